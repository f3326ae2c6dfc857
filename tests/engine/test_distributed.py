"""Two-process training through tools/dist_train.sh on CPU (gloo)."""
import hashlib
import inspect
import os
import os.path as osp
import socket
import subprocess
import textwrap

import pytest

from mmeformer.demo import generate_shapes
from mmeformer.utils import load_from_local

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CONFIG = osp.join(REPO, 'configs', 'demo',
                       'maskrcnn_eformerv2_s0_shapes.py')


def state_hash(state_dict):
    """A digest of every name, dtype, shape and value, in order."""
    digest = hashlib.sha256()
    for name, value in state_dict.items():
        value = value.detach().cpu().contiguous()
        digest.update(f'{name} {value.dtype} {tuple(value.shape)}'.encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()


# Test-only hook, imported by both processes through `custom_imports`; it
# hashes the final state as state_hash does.
RECORDER = '''
import hashlib
import os.path as osp

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RecordRankHook(Hook):
    """Log, per rank, the images each iteration trains on, each save and
    the hashes of the final weights and of the whole state."""

    def _log(self, runner, kind, line):
        path = osp.join(runner.work_dir, f'{kind}_rank{get_rank()}.txt')
        with open(path, 'a') as f:
            f.write(line + '\\n')

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        for sample in data_batch['data_samples']:
            self._log(runner, 'samples', osp.basename(sample.img_path))

    def before_save_checkpoint(self, runner, checkpoint):
        self._log(runner, 'saves', str(checkpoint['meta']['iter']))

    def after_train(self, runner):
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        self._log(runner, 'params', state_hash(dict(model.named_parameters())))
        self._log(runner, 'state', state_hash(model.state_dict()))
''' + inspect.getsource(state_hash)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def read_lines(path):
    with open(path) as f:
        return f.read().split()


@pytest.mark.slow
def test_two_processes(tmp_path):
    generate_shapes(
        str(tmp_path / 'shapes'),
        num_train=8,
        num_val=2,
        img_size=128,
        max_size=40)
    (tmp_path / 'dist_helper_hooks.py').write_text(RECORDER)
    config = tmp_path / 'tiny_dist.py'
    config.write_text(
        textwrap.dedent(f'''
        _base_ = {DEMO_CONFIG!r}
        custom_imports = dict(
            imports=['mmeformer', 'dist_helper_hooks'],
            allow_failed_imports=False)
        train_dataloader = dict(
            batch_size=2,
            dataset=dict(
                data_root={str(tmp_path / 'shapes')!r},
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='LoadAnnotations', with_bbox=True,
                         with_mask=True),
                    dict(type='PackDetInputs')
                ]))
        train_cfg = dict(max_iters=2, val_interval=1000)
        val_cfg = None
        val_dataloader = None
        val_evaluator = None
        param_scheduler = [dict(type='ConstantLR', factor=1., by_epoch=False)]
        default_hooks = dict(
            logger=dict(interval=1), checkpoint=dict(interval=2))
        custom_hooks = [dict(type='RecordRankHook')]
        '''))
    work_dir = tmp_path / 'work'
    env = dict(
        os.environ,
        PORT=str(free_port()),
        # As tools/demo.py: spinning OpenMP threads slow down small machines.
        OMP_WAIT_POLICY=os.environ.get('OMP_WAIT_POLICY', 'PASSIVE'),
        PYTHONPATH=os.pathsep.join(
            [str(tmp_path), os.environ.get('PYTHONPATH', '')]))
    result = subprocess.run([
        'bash', 'tools/dist_train.sh',
        str(config), '2', '--work-dir',
        str(work_dir)
    ],
                            cwd=REPO,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr

    # Each rank trained on its own half of the images: 2 iterations x 2.
    seen = [read_lines(work_dir / f'samples_rank{r}.txt') for r in (0, 1)]
    assert [len(s) for s in seen] == [4, 4]
    assert not set(seen[0]) & set(seen[1])

    # One checkpoint, written once, by rank 0 only, with both random states.
    assert read_lines(work_dir / 'saves_rank0.txt') == ['2']
    assert not (work_dir / 'saves_rank1.txt').exists()
    names = os.listdir(work_dir)
    assert [n for n in names if '.pth' in n] == ['iter_2.pth']
    assert not [n for n in names if n.startswith('.')]
    ckpt = load_from_local(str(work_dir / 'iter_2.pth'), 'cpu')
    assert ckpt['meta']['iter'] == 2
    assert len(ckpt['rng_states']) == 2

    # The ranks ended with the same weights (DDP averages the gradients),
    # and rank 0 saved its state. BatchNorm statistics differ after the last
    # step: the demo's BN is not synchronised, and DDP broadcasts rank 0's
    # buffers at the start of each forward, not after it.
    params = [read_lines(work_dir / f'params_rank{r}.txt') for r in (0, 1)]
    assert params[0] == params[1]
    saved = state_hash(ckpt['state_dict'])
    assert read_lines(work_dir / 'state_rank0.txt') == [saved]
