"""Make ``mmeformer::`` usable in configs.

mmengine resolves ``_base_ = 'mmdet::...'`` through a fixed table of
OpenMMLab packages. :func:`register_config_prefix` adds mmeformer to it, so
a research config can inherit ours::

    _base_ = 'mmeformer::detection/maskrcnn_eformerv2_s2_coco.py'

Importing :mod:`mmeformer` calls it; our tools import mmeformer before they
parse a config. A script of your own does the same: ``import mmeformer``
before ``Config.fromfile``.

mmengine, like MIM, finds the configs in ``<location>/mmeformer/.mim``, where
``<location>`` is where the installed distribution's metadata lives. A wheel
and a develop-mode install (``tools/setup_env.sh``) satisfy this; a PEP 660
editable install does not (see the README, Installation).
:func:`missing_file_message` says which of these went wrong when a config
cannot be read, and :func:`closest_files` suggests the names meant.

:class:`CfgOptionsAction` reads the tools' ``--cfg-options``.
"""
import argparse
import difflib
import os
import os.path as osp
import re
from typing import List

from mmengine.config import DictAction
from mmengine.config import utils as config_utils
from mmengine.utils import get_installed_path

__all__ = [
    'CfgOptionsAction', 'register_config_prefix', 'closest_files',
    'missing_file_message'
]

# How mmengine's ``check_file_exist`` words a missing base config.
_MISSING_FILE = re.compile(r'file "(.+)" does not exist')


class CfgOptionsAction(DictAction):
    """mmengine's ``--cfg-options`` action, with a usage error for an item
    that is not ``KEY=VALUE``.

    :class:`~mmengine.config.DictAction` splits each item on its first
    ``=`` and fails with ``not enough values to unpack`` when there is none.
    """

    def __call__(self, parser, namespace, values, option_string=None):
        for item in values or ():
            if '=' not in item:
                raise argparse.ArgumentError(
                    self, f'{item!r} is not KEY=VALUE; write e.g. '
                    'train_cfg.max_epochs=12 or '
                    'model.backbone.out_indices="[0,1,2,3]"')
        super().__call__(parser, namespace, values, option_string)


def register_config_prefix(prefix: str = 'mmeformer',
                           package: str = 'mmeformer') -> None:
    """Let configs refer to ``<prefix>::<task>/<file>.py``.

    Args:
        prefix (str): The prefix used in configs. Defaults to 'mmeformer'.
        package (str): The installed distribution shipping
            ``.mim/configs``. Defaults to 'mmeformer'.
    """
    config_utils.MODULE2PACKAGE.setdefault(prefix, package)


def closest_files(path: str, n: int = 3) -> List[str]:
    """The files next to ``path`` whose names are closest to its name.

    Args:
        path (str): A file that does not exist.
        n (int): At most this many names. Defaults to 3.

    Returns:
        list[str]: Paths in the folder of ``path`` with its extension, best
        first; empty if the folder does not exist.
    """
    folder = osp.dirname(path) or '.'
    if not osp.isdir(folder):
        return []
    ext = osp.splitext(path)[1]
    names = [name for name in os.listdir(folder) if name.endswith(ext)]
    return [
        osp.join(osp.dirname(path), name)
        for name in difflib.get_close_matches(osp.basename(path), names, n=n)
    ]


def missing_file_message(error: FileNotFoundError,
                         prefix: str = 'mmeformer',
                         package: str = 'mmeformer') -> str:
    """Say which file ``Config.fromfile`` missed and what to do about it.

    A base config that does not exist is named as ``_base_`` names it
    (``<prefix>::<task>/<file>.py`` for ours), with the closest existing
    names; an install of ``package`` in which mmengine finds no configs at
    all gets how to reinstall it.

    Args:
        error (FileNotFoundError): What ``Config.fromfile`` raised.
        prefix (str): The config prefix of ``package``. Defaults to
            'mmeformer'.
        package (str): The package shipping ``.mim/configs``. Defaults to
            'mmeformer'.

    Returns:
        str: One line without the config's own name.
    """
    match = _MISSING_FILE.search(str(error))
    missing = match[1] if match else error.filename
    if not missing:
        return f'FileNotFoundError: {error}'
    missing = osp.abspath(missing)
    mim_root = osp.join(get_installed_path(package), '.mim')
    configs = osp.join(mim_root, 'configs')
    if _is_within(missing, mim_root) and not osp.isdir(configs):
        return (f'{missing} does not exist: mmengine and MIM look for '
                f'{prefix} configs in {mim_root}, which this install of '
                f'{package} lacks (a PEP 660 editable install puts none '
                f'there); reinstall {package} in develop mode: '
                '`pip install "setuptools<80" "pip<25.3"`, then '
                '`pip install --no-use-pep517 -e .` in its checkout (README, '
                'Installation)')
    if not _is_within(missing, configs):
        shown, suggestions = missing, closest_files(missing)
    else:
        shown = f'{prefix}::{osp.relpath(missing, configs)}'
        suggestions = [
            f'{prefix}::{osp.relpath(path, configs)}'
            for path in closest_files(missing)
        ]
    message = f'{shown}: no such config file.'
    if suggestions:
        message += ' Did you mean ' + ' or '.join(suggestions) + '?'
    elif shown != missing:
        folders = sorted(
            name for name in os.listdir(configs)
            if osp.isdir(osp.join(configs, name)))
        message += (f' The {prefix}:: configs are in ' +
                    ', '.join(f'{name}/' for name in folders) + '.')
    elif not osp.isdir(osp.dirname(missing)):
        message += (f' The folder {osp.dirname(missing)} does not exist '
                    'either.')
    return message


def _is_within(path: str, folder: str) -> bool:
    """Whether the absolute ``path`` is ``folder`` or inside it."""
    return osp.commonpath([path, folder]) == folder
