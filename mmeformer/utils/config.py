"""Make ``mmeformer::`` usable in configs.

mmengine resolves ``_base_ = 'mmdet::...'`` through a fixed table of
OpenMMLab packages. :func:`register_config_prefix` adds mmeformer to it, so
a research config can inherit ours::

    _base_ = 'mmeformer::detection/maskrcnn_eformerv2_s2_coco.py'

Importing :mod:`mmeformer` calls it; our tools import mmeformer before they
parse a config. A script of your own does the same: ``import mmeformer``
before ``Config.fromfile``.

:class:`CfgOptionsAction` reads the tools' ``--cfg-options``.
"""
import argparse

from mmengine.config import DictAction
from mmengine.config import utils as config_utils

__all__ = ['CfgOptionsAction', 'register_config_prefix']


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
