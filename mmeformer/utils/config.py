"""Make ``mmeformer::`` usable in configs.

mmengine resolves ``_base_ = 'mmdet::...'`` through a fixed table of
OpenMMLab packages. :func:`register_config_prefix` adds mmeformer to it, so
a research config can inherit ours::

    _base_ = 'mmeformer::detection/maskrcnn_eformerv2_s2_coco.py'

Importing :mod:`mmeformer` calls it; our tools import mmeformer before they
parse a config. A script of your own does the same: ``import mmeformer``
before ``Config.fromfile``.

mmengine also gives every top-level ``type`` dict of a ``<prefix>::`` base
the scope named by the prefix (``_scope_='mmdet'`` for ``mmdet::``). Our
configs are MMPretrain, MMDetection and MMSegmentation configs: their types
live in their ``default_scope`` (``mmeformer.<Name>`` for ours), and in the
scope ``mmeformer`` a data preprocessor, dataset or transform of the host is
not found. The one place where mmengine offers no public way around this is
patched, guarded by tests/utils/test_config.py: ``mmeformer::`` bases are
read like relative ones, without that scope.

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
import functools
import os
import os.path as osp
import re
from typing import List

from mmengine.config import Config, DictAction
from mmengine.config import utils as config_utils
from mmengine.utils import get_installed_path

__all__ = [
    'CfgOptionsAction', 'register_config_prefix', 'closest_files',
    'missing_file_message'
]

# How mmengine's ``check_file_exist`` words a missing base config.
_MISSING_FILE = re.compile(r'file "(.+)" does not exist')
# Prefixes whose bases are read without the prefix as their scope.
_UNSCOPED_PREFIXES = set()


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

    Such a base reads as the file itself: its types are built in its own
    ``default_scope``, not in a scope named by the prefix.

    Args:
        prefix (str): The prefix used in configs. Defaults to 'mmeformer'.
        package (str): The installed distribution shipping
            ``.mim/configs``. Defaults to 'mmeformer'.
    """
    config_utils.MODULE2PACKAGE.setdefault(prefix, package)
    _UNSCOPED_PREFIXES.add(prefix)
    _read_prefixed_bases_unscoped()


def _read_prefixed_bases_unscoped() -> None:
    """Make mmengine read the bases of :data:`_UNSCOPED_PREFIXES` without a
    scope, as it reads a relative base.

    ``Config._file2dict`` sets ``_scope_`` from the scope that
    ``Config._get_cfg_path`` returns for each base; the wrapper returns None
    for our prefixes. Applied once; skipped if mmengine no longer has the
    static method (tests/utils/test_config.py then fails).
    """
    current = Config.__dict__.get('_get_cfg_path')
    if not isinstance(current, staticmethod) or getattr(
            current.__func__, 'unscoped_prefixes', None) is not None:
        return
    get_cfg_path = current.__func__

    @functools.wraps(get_cfg_path)
    def _get_cfg_path(cfg_path: str, filename: str):
        path, scope = get_cfg_path(cfg_path, filename)
        return path, None if scope in _UNSCOPED_PREFIXES else scope

    _get_cfg_path.unscoped_prefixes = _UNSCOPED_PREFIXES
    Config._get_cfg_path = staticmethod(_get_cfg_path)


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
                '`pip install "setuptools<80" "pip<25.3" wheel`, then '
                '`pip install --no-use-pep517 -e .` in its checkout (README, '
                'Installation)')
    if not _is_within(missing, configs):
        message = f'{missing}: no such config file.'
        suggestions = closest_files(missing)
        if not suggestions and not osp.isdir(osp.dirname(missing)):
            message += (f' The folder {osp.dirname(missing)} does not exist '
                        'either.')
    else:
        message = (f'{prefix}::{osp.relpath(missing, configs)}: no such '
                   'config file.')
        folders = sorted(
            name for name in os.listdir(configs)
            if osp.isdir(osp.join(configs, name)))
        task, _, rest = osp.relpath(missing, configs).partition(os.sep)
        if task not in folders:
            # A misspelt task folder: the same file in the closest one.
            for folder in difflib.get_close_matches(task, folders, n=1):
                missing = osp.join(configs, folder, rest)
        suggestions = [
            f'{prefix}::{osp.relpath(path, configs)}' for path in (
                [missing] if osp.isfile(missing) else closest_files(missing))
        ]
        if not suggestions:
            message += (f' The {prefix}:: configs are in ' +
                        ', '.join(f'{name}/' for name in folders) + '.')
    if suggestions:
        message += ' Did you mean ' + ' or '.join(suggestions) + '?'
    return message


def _is_within(path: str, folder: str) -> bool:
    """Whether the absolute ``path`` is ``folder`` or inside it."""
    return osp.commonpath([path, folder]) == folder
