"""Train a config in its host: the logic behind ``tools/train.py``."""
import glob
import logging
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from ..engine.distributed import log_once
from .checkpoint_fit import check_checkpoint
from .errors import UnsupportedOptionError
from .hosts import get_host
from .launcher import check_launcher_environment
from .meta_model import build_meta_model, check_neck_inputs
from .preflight import check_train
from .runner import build_runner, load_config

__all__ = ['apply_train_options', 'train', 'warn_if_nothing_to_resume']


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


def warn_if_nothing_to_resume(cfg: Config) -> bool:
    """Warn, from the first process, when ``--resume`` without a file
    finds nothing to resume.

    Like mmengine, training then starts from scratch: a job that is always
    launched with ``--resume`` (e.g. requeued after pre-emption) must be
    able to start. The warning comes first, so that a mistyped or empty
    ``--work-dir`` does not go unnoticed.

    Args:
        cfg (Config): The config, after :func:`apply_train_options`.

    Returns:
        bool: Whether it warned.
    """
    if not cfg.get('resume') or cfg.get('load_from') is not None:
        return False
    work_dir = cfg.work_dir
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')) or glob.glob(
            osp.join(work_dir, '*.pth')):
        return False
    where = (f'{work_dir} holds no checkpoint'
             if osp.isdir(work_dir) else f'{work_dir} does not exist')
    log_once(
        f'--resume: {where}, so training starts from scratch. To continue '
        'a run, pass its work dir with --work-dir or its checkpoint with '
        '--resume CKPT.',
        level=logging.WARNING)
    return True


def train(config: str,
          work_dir: Optional[str] = None,
          resume: Optional[str] = None,
          amp: bool = False,
          auto_scale_lr: bool = False,
          cfg_options: Optional[dict] = None,
          launcher: str = 'none',
          partial_load: bool = False) -> Runner:
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
        partial_load (bool): Start from a ``load_from`` checkpoint that fits
            the model only in part, e.g. a detector of another dataset.
            Defaults to False.

    Returns:
        Runner: The runner after training.

    Raises:
        SetupError: Before anything is built (the model only on the meta
            device), if the launcher did not start the process, the config
            cannot be read, names no supported host
            or describes a model that cannot be built, an option cannot
            work, a dataset or checkpoint is missing, or the ``load_from``
            (or ``--resume``) checkpoint cannot be read or does not fit the
            model.
    """
    check_launcher_environment(launcher, 'train')
    cfg = load_config(config, cfg_options, work_dir, launcher)
    host = get_host(cfg)
    apply_train_options(cfg, resume, amp, auto_scale_lr)
    warn_if_nothing_to_resume(cfg)
    check_train(cfg)
    model = build_meta_model(cfg, host)
    check_neck_inputs(model, cfg)
    check_checkpoint(
        model,
        cfg.get('load_from'),
        config,
        partial=partial_load,
        fix=('pass a checkpoint of this config\'s model to --resume'
             if cfg.get('resume') else
             'set load_from to a checkpoint of this config\'s model'))
    del model
    runner = build_runner(cfg, host)
    runner.train()
    return runner
