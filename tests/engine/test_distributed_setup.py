"""setup_distributed: what a CPU process group needs, in one process.

tests/engine/test_distributed.py runs real two-process training through
tools/dist_train.sh; this file checks the config changes and the process
group start-up directly, with a world of one.
"""
import multiprocessing

import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config

from mmeformer.engine.distributed import setup_distributed


def make_cfg(launcher):
    return Config(
        dict(
            launcher=launcher,
            model=dict(
                type='EncoderDecoder',
                decode_head=dict(norm_cfg=dict(type='SyncBN'))),
            sync_bn='torch',
            env_cfg=dict(dist_cfg=dict(backend='nccl'))))


def test_without_launcher_nothing_changes():
    cfg = make_cfg('none')
    assert setup_distributed(cfg) is cfg
    assert not torch_dist.is_initialized()


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU behaviour')
def test_cpu_processes_use_gloo_without_device_ids(monkeypatch):
    for key, value in dict(
            RANK='0',
            LOCAL_RANK='0',
            WORLD_SIZE='1',
            MASTER_ADDR='127.0.0.1',
            MASTER_PORT='0').items():
        monkeypatch.setenv(key, value)
    set_device = torch.cuda.set_device
    start_method = multiprocessing.get_start_method(allow_none=True)
    cfg = make_cfg('pytorch')
    try:
        ready = setup_distributed(cfg)
        assert torch_dist.is_initialized()
        assert torch_dist.get_backend() == 'gloo'
    finally:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()
        # init_dist sets a start method when none is; leave none behind.
        multiprocessing.set_start_method(start_method, force=True)
    assert torch.cuda.set_device is set_device
    assert ready.env_cfg.dist_cfg.backend == 'gloo'
    assert ready.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert ready.model_wrapper_cfg.device_ids is None
    assert ready.model.decode_head.norm_cfg.type == 'BN'
    assert ready.sync_bn is None
    # The caller's config is left as it was.
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert cfg.model.decode_head.norm_cfg.type == 'SyncBN'
