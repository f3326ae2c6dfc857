"""The mmengine behaviour that mmeformer/engine/mmengine_shim.py relies on.

Each test fails when a new mmengine release changes what the shim assumes:
how the Runner keeps the ``--resume`` request, and that CheckpointHook
writes the ``last_checkpoint`` pointer in place with its module's ``open``.
"""
import builtins
import os

import torch
import torch.nn as nn
from mmengine.hooks import Hook, checkpoint_hook
from mmengine.model import BaseModel
from mmengine.runner import Runner

from mmeformer.engine.mmengine_shim import (get_resume_request,
                                            set_resume_checkpoint,
                                            write_pointer_atomically)


class TinyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, mode='tensor'):
        loss = self.linear(inputs).pow(2).mean()
        return dict(loss=loss) if mode == 'loss' else loss


class RecordHook(Hook):
    """Record the first iteration and the pointer's inode after each save."""
    priority = 'LOWEST'

    def __init__(self, set_resume_to=None):
        self.set_resume_to = set_resume_to
        self.first_iter = None
        self.pointer_inodes = []

    def before_run(self, runner):
        if self.set_resume_to is not None:
            set_resume_checkpoint(runner, self.set_resume_to)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.first_iter is None:
            self.first_iter = runner.iter

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        pointer = os.path.join(runner.work_dir, 'last_checkpoint')
        self.pointer_inodes.append(os.stat(pointer).st_ino)


def run(work_dir, max_iters, record, resume=False):
    runner = Runner(
        model=TinyModel(),
        work_dir=str(work_dir),
        experiment_name=f'shim_{work_dir.name}_{max_iters}_{resume}',
        train_dataloader=dict(
            dataset=[dict(inputs=torch.ones(2))] * 4,
            sampler=dict(type='InfiniteSampler', shuffle=False),
            batch_size=1,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1,
                            by_epoch=False)),
        custom_hooks=[record],
        resume=resume)
    runner.train()
    return runner


def test_resume_request_and_the_checkpoint_the_runner_resumes(tmp_path):
    run(tmp_path, 3, RecordHook())
    request = Runner(
        model=TinyModel(),
        work_dir=str(tmp_path),
        experiment_name='shim_request',
        resume=True,
        load_from=str(tmp_path / 'iter_1.pth'))
    assert get_resume_request(request) == (True, str(tmp_path / 'iter_1.pth'))

    # The pointer names iter_3; the checkpoint set in before_run wins.
    record = RecordHook(set_resume_to=str(tmp_path / 'iter_1.pth'))
    runner = run(tmp_path, 4, record, resume=True)
    assert get_resume_request(runner) == (True, str(tmp_path / 'iter_1.pth'))
    assert record.first_iter == 1


def test_pointer_written_in_place_unless_replaced_atomically(
        tmp_path, monkeypatch):
    # mmengine as released: the pointer keeps its inode, written in place.
    monkeypatch.setattr(checkpoint_hook, 'open', builtins.open, raising=False)
    in_place = RecordHook()
    run(tmp_path / 'in_place', 3, in_place)
    assert len(set(in_place.pointer_inodes)) == 1

    write_pointer_atomically()
    replaced = RecordHook()
    run(tmp_path / 'replaced', 3, replaced)
    # Each save renames a new file over the pointer.
    assert len(set(replaced.pointer_inodes)) == 3
    assert (tmp_path / 'replaced' / 'last_checkpoint').read_text() == str(
        tmp_path / 'replaced' / 'iter_3.pth')
    assert not [
        n for n in os.listdir(tmp_path / 'replaced') if n.startswith('.')
    ]
