"""Train a config in its host: the logic behind ``tools/train.py``."""
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from .errors import UnsupportedOptionError
from .hosts import get_host
from .preflight import check_train
from .runner import build_runner, load_config

__all__ = ['apply_train_options', 'train']


def apply_train_options(cfg: Config,
                        resume: Optional[str] = None,
                        amp: bool = False,
                        auto_scale_lr: bool = False) -> Config:
    """Apply the training switches of ``tools/train.py`` to ``cfg``.

    Args:
        cfg (Config): The config, changed in place.
        resume (str, optional): ``'auto'`` to continue from the latest
            checkpoint of the work dir, or a checkpoint path.
        amp (bool): Mixed-precision training.
        auto_scale_lr (bool): Scale the learning rate by the actual total
            batch size over ``auto_scale_lr.base_batch_size``.

    Returns:
        Config: ``cfg``.

    Raises:
        UnsupportedOptionError: ``amp`` without CUDA, or ``auto_scale_lr``
            with a config that has no ``auto_scale_lr.base_batch_size``.
    """
    if amp:
        if not torch.cuda.is_available():
            raise UnsupportedOptionError(
                '--amp needs a CUDA GPU: mmengine\'s AmpOptimWrapper refuses '
                'to run on the CPU. Train without --amp here.')
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'OptimWrapper':
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise UnsupportedOptionError(
                '--auto-scale-lr needs auto_scale_lr.base_batch_size in the '
                'config: the total batch size its learning rate is set for')
        cfg.auto_scale_lr.enable = True
    if resume == 'auto':
        # The Runner looks for the latest checkpoint in the work dir.
        cfg.resume = True
        cfg.load_from = None
    elif resume is not None:
        cfg.resume = True
        cfg.load_from = resume
    return cfg


def train(config: str,
          work_dir: Optional[str] = None,
          resume: Optional[str] = None,
          amp: bool = False,
          auto_scale_lr: bool = False,
          cfg_options: Optional[dict] = None,
          launcher: str = 'none') -> Runner:
    """Train ``config`` in the host named by its ``default_scope``.

    Args:
        config (str): Path of the config.
        work_dir (str, optional): Where logs and checkpoints go; defaults to
            the config's ``work_dir`` or ``./work_dirs/<config name>``.
        resume (str, optional): See :func:`apply_train_options`.
        amp (bool): See :func:`apply_train_options`.
        auto_scale_lr (bool): See :func:`apply_train_options`.
        cfg_options (dict, optional): Config overrides.
        launcher (str): 'none', 'pytorch' or 'slurm'. Defaults to 'none'.

    Returns:
        Runner: The runner after training.

    Raises:
        SetupError: Before anything is built, if the config names no
            supported host, an option cannot work, or a dataset or
            checkpoint is missing.
    """
    cfg = load_config(config, cfg_options, work_dir, launcher)
    host = get_host(cfg)
    apply_train_options(cfg, resume, amp, auto_scale_lr)
    check_train(cfg)
    runner = build_runner(cfg, host)
    runner.train()
    return runner
