"""Make ``mmeformer::`` usable in configs.

mmengine resolves ``_base_ = 'mmdet::...'`` through a fixed table of
OpenMMLab packages. :func:`register_config_prefix` adds mmeformer to it, so
a research config can inherit ours::

    _base_ = 'mmeformer::detection/maskrcnn_eformerv2_s2_coco.py'

Importing :mod:`mmeformer` calls it; our tools import mmeformer before they
parse a config. A script of your own does the same: ``import mmeformer``
before ``Config.fromfile``.
"""
from mmengine.config import utils as config_utils

__all__ = ['register_config_prefix']


def register_config_prefix(prefix: str = 'mmeformer',
                           package: str = 'mmeformer') -> None:
    """Let configs refer to ``<prefix>::<task>/<file>.py``.

    Args:
        prefix (str): The prefix used in configs. Defaults to 'mmeformer'.
        package (str): The installed distribution shipping
            ``.mim/configs``. Defaults to 'mmeformer'.
    """
    config_utils.MODULE2PACKAGE.setdefault(prefix, package)
