"""The ImageNet configs scale the learning rate to the total batch as the
official main.py does (1e-3 x total batch / 1024), through mmengine's own
``Runner.scale_lr``, without ``--auto-scale-lr``."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

import mmeformer  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def runner(tmp_path_factory):
    """A Runner of the V2-S0 ImageNet config, without its teacher (the
    learning rate does not depend on it)."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/classification/eformerv2_s0_in1k.py'))
    cfg.model.teacher = None
    cfg.work_dir = str(tmp_path_factory.mktemp('lr'))
    return Runner.from_cfg(cfg)


@pytest.mark.parametrize('processes, batch_size, lr', [(4, 128, 5e-4),
                                                       (8, 128, 1e-3),
                                                       (1, 64, 6.25e-5)])
def test_lr_follows_the_total_batch(runner, processes, batch_size, lr):
    assert runner.auto_scale_lr == dict(base_batch_size=1024, enable=True)
    # What Runner.train() does before building the schedulers, for a run of
    # `processes` processes of `batch_size` images each.
    runner._world_size = processes
    runner._train_dataloader['batch_size'] = batch_size
    optim_wrapper = runner.build_optim_wrapper(runner.cfg.optim_wrapper)
    runner.scale_lr(optim_wrapper, runner.auto_scale_lr)
    # The optimizer's groups: the wrapper's `param_groups` adds mmengine's
    # unscaled base_lr record.
    lrs = {group['lr'] for group in optim_wrapper.optimizer.param_groups}
    assert sorted(lrs) == pytest.approx([lr])
