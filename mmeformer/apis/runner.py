"""Load a config and build the Runner of its host.

What ``tools/train.py`` and ``tools/test.py`` share: the config with its
command-line overrides, the host's registries, the work dir, the
distributed set-up and the Runner itself.
"""
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..engine.distributed import setup_distributed
from .hosts import Host, get_host

__all__ = ['load_config', 'build_runner']


def load_config(config: str,
                cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Read a config and apply the overrides common to both tools.

    Args:
        config (str): Path of the config (``mmeformer::`` and the hosts'
            prefixes work in its ``_base_``).
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        work_dir (str, optional): Overrides ``cfg.work_dir``; without either,
            ``./work_dirs/<config name>``.
        launcher (str): 'none', 'pytorch' or 'slurm'. Defaults to 'none'.

    Returns:
        Config: The config.
    """
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


def build_runner(cfg: Config, host: Optional[Host] = None) -> Runner:
    """Build the Runner for ``cfg`` in its host.

    Registers the host's modules, prepares distributed runs (gloo on CPU, see
    :mod:`mmeformer.engine.distributed`) and builds ``cfg.runner_type`` if
    the config names one.

    Args:
        cfg (Config): A config from :func:`load_config`, checked and
            adjusted by the caller.
        host (Host, optional): Its host; read from ``default_scope`` if not
            given.

    Returns:
        Runner: The runner, not started.
    """
    host = host or get_host(cfg)
    host.register_modules()
    cfg = setup_distributed(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
