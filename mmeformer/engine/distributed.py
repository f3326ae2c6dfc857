"""Distributed runs on GPUs and on CPUs alike.

mmengine 0.10 assumes GPUs once a launcher is given: ``init_dist`` calls
``torch.cuda.set_device`` unconditionally, the OpenMMLab configs ask for the
``nccl`` backend, the Runner wraps the model in DDP with
``device_ids=[LOCAL_RANK]`` (DDP refuses device ids for a CPU module), and
SyncBatchNorm only runs on accelerators. :func:`setup_distributed` handles
all four before the Runner is built, so ``tools/dist_train.sh <config> 2``
runs two processes with gloo on a CPU machine and with nccl on a GPU one.
"""
import contextlib
import copy
import logging
import os
from typing import Any, Iterator

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.dist import init_dist
from mmengine.logging import print_log
from mmengine.registry import MODEL_WRAPPERS
from torch.nn.parallel import DistributedDataParallel

__all__ = ['log_once', 'setup_distributed', 'use_cpu_distributed']


def use_cpu_distributed(launcher: str) -> bool:
    """Whether a run with ``launcher`` is distributed over CPU processes."""
    return launcher != 'none' and not torch.cuda.is_available()


@contextlib.contextmanager
def _cuda_set_device_skipped() -> Iterator[None]:
    """Make ``torch.cuda.set_device`` a no-op inside the block.

    ``init_dist`` binds each process to a GPU before it creates the process
    group; without CUDA that call fails although gloo needs no device.
    """
    set_device = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = set_device


def _sync_bn_to_bn(node: Any) -> int:
    """Replace ``SyncBN`` norm configs by ``BN`` in place; count them."""
    count = 0
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
            count += 1
        for value in node.values():
            count += _sync_bn_to_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _sync_bn_to_bn(value)
    return count


def log_once(message: str, level: int = logging.INFO) -> None:
    """Log from the first process only, before the process group exists.

    The rank comes from the launcher's environment (torchrun's RANK,
    srun's SLURM_PROCID).

    Args:
        message (str): The message.
        level (int): Its logging level. Defaults to ``logging.INFO``.
    """
    rank = os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0'))
    if rank == '0':
        print_log(message, logger='current', level=level)


def _prepare_cpu(cfg: Config) -> None:
    """Adapt ``cfg`` to gloo processes without GPUs."""
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    backend = dist_cfg.get('backend', 'nccl')
    if backend != 'gloo':
        log_once(f'No CUDA device: using the gloo backend instead of '
                 f'{backend!r}.')
        dist_cfg['backend'] = 'gloo'

    wrapper_cfg = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper_cls = MODEL_WRAPPERS.get(
        wrapper_cfg.get('type', 'MMDistributedDataParallel'))
    if wrapper_cls is not None and issubclass(wrapper_cls,
                                              DistributedDataParallel):
        # DDP over CPU modules takes no device ids; the Runner only fills
        # them in when the config leaves them out.
        wrapper_cfg['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper_cfg

    converted = _sync_bn_to_bn(cfg.model)
    if cfg.get('sync_bn') is not None:
        cfg.sync_bn = None
        converted += 1
    if converted:
        log_once('No CUDA device: SyncBatchNorm needs one, so BatchNorm '
                 'layers normalise over each process\'s own batch.')


def setup_distributed(cfg: Config) -> Config:
    """Prepare a config for its launcher and start the process group.

    Without a launcher (``cfg.launcher == 'none'``) or with CUDA, nothing
    changes: the Runner starts the process group itself, with the config's
    backend (nccl in OpenMMLab configs). Without CUDA, the returned config
    uses gloo, gives DDP no device ids and plain BatchNorm instead of
    SyncBatchNorm, and the process group is started here without binding a
    GPU; the Runner then finds it initialised and uses it.

    Args:
        cfg (Config): A complete config with ``launcher`` set.

    Returns:
        Config: ``cfg`` itself, or an adapted copy for CPU processes.
    """
    launcher = cfg.get('launcher', 'none')
    if not use_cpu_distributed(launcher):
        return cfg
    cfg = copy.deepcopy(cfg)
    _prepare_cpu(cfg)
    if not torch_dist.is_initialized():
        with _cuda_set_device_skipped():
            init_dist(launcher, **cfg.env_cfg.dist_cfg)
    return cfg
