import argparse
import os
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.runner.checkpoint import load_from_local as mmengine_loader
from torch.utils.data import Dataset

from mmeformer.utils import (UnreadableCheckpointError, UnsafeCheckpointError,
                             extract_state_dict, load_from_local,
                             read_checkpoint, register_safe_checkpoint_loader,
                             state_dict_problems)


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, targets, mode='tensor'):
        outputs = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=(outputs - targets).pow(2).mean())
        return outputs


class ToyDataset(Dataset):

    def __len__(self):
        return 32

    def __getitem__(self, index):
        x = torch.tensor([index / 32., 1.])
        return dict(inputs=x, targets=x.sum(0, keepdim=True))


class IterationRecorder(Hook):
    """Remember which iterations ran, and at which learning rate."""

    def __init__(self):
        self.iters = []
        self.lrs = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.iters.append(runner.iter)
        self.lrs.append(runner.optim_wrapper.get_lr()['lr'][0])


def build_runner(work_dir, max_iters, resume=False):
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        experiment_name=f'toy_{max_iters}_{resume}',
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='InfiniteSampler', shuffle=True),
            batch_size=4,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=dict(
            type='CosineAnnealingLR', by_epoch=False, begin=0, end=8),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[IterationRecorder()],
        resume=resume,
        randomness=dict(seed=0))


def recorder(runner):
    return next(h for h in runner.hooks if isinstance(h, IterationRecorder))


@pytest.fixture
def default_torch_load(monkeypatch):
    """Neither the global escape hatch nor a forced weights_only."""
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    monkeypatch.delenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', raising=False)
    assert register_safe_checkpoint_loader()
    yield


def test_mmengine_loader_alone_cannot_resume(tmp_path, default_torch_load):
    """The breakage the package works around: it must still exist."""
    runner = build_runner(tmp_path, max_iters=2)
    runner.train()
    with pytest.raises(Exception, match='HistoryBuffer'):
        mmengine_loader(str(tmp_path / 'iter_2.pth'), 'cpu')


def test_resume_continues_at_the_right_iteration(tmp_path, default_torch_load):
    uninterrupted = build_runner(tmp_path / 'whole', max_iters=8)
    uninterrupted.train()

    first = build_runner(tmp_path, max_iters=4)
    first.train()
    lr_at_stop = first.optim_wrapper.get_lr()['lr'][0]
    assert (tmp_path / 'iter_4.pth').is_file()

    second = build_runner(tmp_path, max_iters=8, resume=True)
    second.train()
    assert recorder(first).iters == [0, 1, 2, 3]
    assert recorder(second).iters == [4, 5, 6, 7]
    assert second.iter == 8
    # The schedule continues where it stopped, as if never interrupted.
    assert recorder(second).lrs == pytest.approx(
        recorder(uninterrupted).lrs[4:])

    checkpoint = load_from_local(str(tmp_path / 'iter_4.pth'), 'cpu')
    assert checkpoint['meta']['iter'] == 4
    assert checkpoint['optimizer']['param_groups'][0]['lr'] == pytest.approx(
        lr_at_stop)


def test_load_from_uses_the_safe_loader(tmp_path, default_torch_load):
    build_runner(tmp_path, max_iters=2).train()
    checkpoint = CheckpointLoader.load_checkpoint(str(tmp_path / 'iter_2.pth'))
    assert set(checkpoint['state_dict']) == {'linear.weight', 'linear.bias'}


def test_plain_weights_load(tmp_path, default_torch_load):
    path = tmp_path / 'third_party.pth'
    torch.save({'model': {'w': torch.ones(2)}}, path)
    loaded = CheckpointLoader.load_checkpoint(str(path))
    assert torch.equal(loaded['model']['w'], torch.ones(2))


class CodeOnLoad:
    """Unpickling this calls ``os.system``."""

    def __reduce__(self):
        return (os.system, ('echo unsafe', ))


def test_unsafe_pickle_is_refused(tmp_path, default_torch_load):
    path = tmp_path / 'unsafe.pth'
    torch.save({'state_dict': {}, 'payload': CodeOnLoad()}, path)
    with pytest.raises(UnsafeCheckpointError, match='Refusing to load'):
        CheckpointLoader.load_checkpoint(str(path))


class ReachesPastHistoryBuffer:
    """Unpickling this asks for a private attribute through ``getattr``."""

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__subclasses__'))


def test_getattr_is_restricted_to_history_buffer(tmp_path, default_torch_load):
    path = tmp_path / 'getattr.pth'
    torch.save({'f': ReachesPastHistoryBuffer()}, path)
    with pytest.raises(UnsafeCheckpointError, match='__subclasses__'):
        load_from_local(str(path), 'cpu')


def test_missing_file(tmp_path, default_torch_load):
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_from_local(str(tmp_path / 'missing.pth'), 'cpu')


def test_read_checkpoint_takes_the_official_training_arguments(tmp_path):
    """The official training script stores its arguments with the weights."""
    src = tmp_path / 'checkpoint.pth'
    torch.save(
        dict(
            model=dict(weight=torch.ones(2)),
            args=argparse.Namespace(model='efficientformer_l1')), src)
    checkpoint = read_checkpoint(str(src))
    assert checkpoint['args'].model == 'efficientformer_l1'
    assert torch.equal(checkpoint['model']['weight'], torch.ones(2))
    with pytest.raises(UnreadableCheckpointError, match='is a folder'):
        read_checkpoint(str(tmp_path))


@pytest.mark.parametrize('checkpoint,container', [
    (dict(state_dict=dict(w=torch.ones(1)), meta=dict(epoch=1)), 'state_dict'),
    (dict(model=dict(w=torch.ones(1)), args=None), 'model'),
    (OrderedDict(w=torch.ones(1)), None),
])
def test_extract_state_dict(checkpoint, container):
    state_dict, found = extract_state_dict(checkpoint, 'file.pth')
    assert found == container and list(state_dict) == ['w']


def test_extract_refuses_empty_state_dicts():
    with pytest.raises(UnreadableCheckpointError, match='holds no tensors'):
        extract_state_dict(dict(state_dict={}), 'file.pth')
    with pytest.raises(
            UnreadableCheckpointError, match="checkpoint\\['model'\\] is a"):
        extract_state_dict(dict(model=[torch.ones(1)]), 'file.pth')


def test_state_dict_problems_name_what_a_strict_load_refuses():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    given = OrderedDict(model.state_dict())
    # BatchNorm's counter is filled in by the loaders: not required.
    del given['1.num_batches_tracked']
    assert not any(
        items for _, items in state_dict_problems(model.state_dict(), given))
    given['0.weight'] = torch.zeros(4, 3, 5, 5)
    del given['1.bias']
    given['head.weight'] = torch.zeros(1)
    problems = dict(state_dict_problems(model.state_dict(), given))
    assert problems == {
        'shape mismatches':
        ['0.weight: (4, 3, 5, 5) in the file, (4, 3, 3, 3) in the model'],
        'missing keys (in the model, not in the file)': ['1.bias'],
        'unexpected keys (in the file, not in the model)': ['head.weight'],
    }
    # The same findings as torch's strict load.
    with pytest.raises(RuntimeError) as error:
        model.load_state_dict(given)
    for key in ('0.weight', '1.bias', 'head.weight'):
        assert key in str(error.value)
