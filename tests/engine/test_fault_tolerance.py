"""A killed training resumes as if it had never stopped.

The end-to-end tests run tools/train.py in subprocesses on a shrunken demo
config and kill them with SIGKILL: once from outside while training, once
from inside halfway through writing a checkpoint. Each resumed run must end
bit for bit where an uninterrupted run ends: same iteration, learning rate,
optimizer state and weights.
"""
import os
import os.path as osp
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from unittest.mock import MagicMock

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import HOOKS
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmeformer.demo import generate_shapes
from mmeformer.engine import (AtomicCheckpointHook, RandomStateHook,
                              ResumeFallbackHook, checkpoint_defect)
from mmeformer.utils import load_from_local

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CONFIG = osp.join(REPO, 'configs', 'demo',
                       'maskrcnn_eformerv2_s0_shapes.py')
MAX_ITERS = 4

# Test-only hooks, imported by the subprocess through `custom_imports`.
HELPER_HOOKS = '''
import os
import signal
import time

from mmengine.fileio import LocalBackend
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class StallHook(Hook):
    """Tell the test, then wait for its SIGKILL, before iteration `at`."""

    def __init__(self, at, flag_file):
        self.at = at
        self.flag_file = flag_file

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.at:
            open(self.flag_file, 'w').close()
            time.sleep(600)


@HOOKS.register_module()
class DieWhileSavingHook(Hook):
    """SIGKILL itself halfway through writing the checkpoint of `at`."""

    def __init__(self, at):
        self.at = at

    def before_save_checkpoint(self, runner, checkpoint):
        if checkpoint['meta']['iter'] != self.at:
            return

        def put(backend, obj, filepath):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            os.kill(os.getpid(), signal.SIGKILL)

        LocalBackend.put = put
'''

# --- End to end, through tools/train.py ------------------------------------


@pytest.fixture(scope='module')
def setup_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('fault_tolerance')
    generate_shapes(
        str(root / 'shapes'),
        num_train=8,
        num_val=2,
        img_size=128,
        max_size=40)
    (root / 'ft_helper_hooks.py').write_text(HELPER_HOOKS)
    base = f'''
        _base_ = {DEMO_CONFIG!r}
        custom_imports = dict(
            imports=['mmeformer', 'ft_helper_hooks'],
            allow_failed_imports=False)
        train_dataloader = dict(
            batch_size=2,
            dataset=dict(
                data_root={str(root / 'shapes')!r},
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='LoadAnnotations', with_bbox=True,
                         with_mask=True),
                    dict(type='RandomFlip', prob=0.5),
                    dict(type='PackDetInputs')
                ]))
        train_cfg = dict(max_iters={MAX_ITERS}, val_interval=1000)
        val_cfg = None
        val_dataloader = None
        val_evaluator = None
        param_scheduler = [
            dict(type='LinearLR', start_factor=0.1, by_epoch=False,
                 begin=0, end=1),
            dict(type='CosineAnnealingLR', by_epoch=False, begin=1,
                 end={MAX_ITERS}, T_max={MAX_ITERS - 1}, eta_min=1e-5)
        ]
        default_hooks = dict(
            logger=dict(interval=1),
            checkpoint=dict(interval=2, max_keep_ckpts=2))
        '''
    (root / 'tiny.py').write_text(textwrap.dedent(base))
    return root


def train_cmd(config, work_dir, *extra):
    return [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'),
        str(config), '--work-dir',
        str(work_dir), *extra
    ]


def run_env(setup_dir):
    path = os.pathsep.join([str(setup_dir), os.environ.get('PYTHONPATH', '')])
    # As tools/demo.py: spinning OpenMP threads slow down small machines.
    return dict(
        os.environ,
        PYTHONPATH=path,
        OMP_WAIT_POLICY=os.environ.get('OMP_WAIT_POLICY', 'PASSIVE'))


def start_training(setup_dir, config, work_dir, *extra, **popen_kwargs):
    """tools/train.py in the background."""
    return subprocess.Popen(
        train_cmd(config, work_dir, *extra),
        cwd=REPO,
        env=run_env(setup_dir),
        **popen_kwargs)


def start_logged(setup_dir, config, work_dir, *extra):
    """tools/train.py in the background, its output kept in files: runs
    side by side fill no pipe that nobody reads.

    Returns:
        tuple: The process and its stdout and stderr files.
    """
    out, err = tempfile.TemporaryFile('w+'), tempfile.TemporaryFile('w+')
    proc = start_training(
        setup_dir, config, work_dir, *extra, stdout=out, stderr=err)
    return proc, out, err


def finish(started, timeout=300):
    """Wait for a training of :func:`start_logged`; its result."""
    proc, *files = started
    proc.wait(timeout)
    outputs = []
    for stream in files:
        stream.seek(0)
        outputs.append(stream.read())
        stream.close()
    return subprocess.CompletedProcess(proc.args, proc.returncode, *outputs)


def assert_same_training_state(path, reference_path):
    """Iteration, lr, optimizer state and weights are identical."""
    ckpt = load_from_local(str(path), 'cpu')
    ref = load_from_local(str(reference_path), 'cpu')
    assert ckpt['meta']['iter'] == ref['meta']['iter'] == MAX_ITERS
    assert ckpt['message_hub']['runtime_info']['iter'] == MAX_ITERS - 1
    groups = ckpt['optimizer']['param_groups']
    ref_groups = ref['optimizer']['param_groups']
    assert [g['lr'] for g in groups] == [g['lr'] for g in ref_groups]
    assert ckpt['param_schedulers'] == ref['param_schedulers']
    state, ref_state = ckpt['optimizer']['state'], ref['optimizer']['state']
    assert state.keys() == ref_state.keys()
    for key in ref_state:
        for name, value in ref_state[key].items():
            assert torch.equal(state[key][name], value), (key, name)
    for name, value in ref['state_dict'].items():
        assert torch.equal(ckpt['state_dict'][name], value), name


def assert_resumed_at_iter_2(result):
    """The run succeeded, resuming at the checkpoint of iteration 2, and
    trained the remaining iterations only."""
    assert result.returncode == 0, result.stdout + result.stderr
    log = result.stdout + result.stderr
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'Advance dataloader 2 steps' in log
    assert f'Iter(train) [{MAX_ITERS}/{MAX_ITERS}]' in log
    assert 'Iter(train) [1/' not in log


def write_config(setup_dir, name, custom_hook):
    path = setup_dir / f'{name}.py'
    path.write_text(f"_base_ = './tiny.py'\ncustom_hooks = [{custom_hook}]\n")
    return path


class Killed:
    """A training killed at some point, what it left, and its resumed run.

    Attributes:
        work_dir (Path): Where both runs write.
        killed (CompletedProcess): The killed run (SIGKILL status).
        pointer (str): ``last_checkpoint`` right after the kill.
        names (list[str]): The work dir's ``*.pth*`` files after the kill.
        partial (list[Path]): Half-written temporary checkpoints.
        partial_problems (list[str | None]): ``checkpoint_defect`` of each.
        resumed (CompletedProcess): The run resumed after the kill.
    """

    def __init__(self, work_dir):
        self.work_dir = work_dir

    def inspect(self, killed):
        self.killed = killed
        self.pointer = (self.work_dir / 'last_checkpoint').read_text()
        self.names = sorted(p.name for p in self.work_dir.glob('*.pth*'))
        self.partial = sorted(self.work_dir.glob('.iter_*.tmp.pth'))
        self.partial_problems = [
            checkpoint_defect(str(path)) for path in self.partial
        ]


@pytest.fixture(scope='module')
def runs(setup_dir):
    """The uninterrupted reference and the two killed trainings, side by
    side, then the two resumed runs, side by side: each training is a
    process of its own, and none reads what another writes."""
    flag = setup_dir / 'stalled'
    stall = write_config(setup_dir, 'stall',
                         f"dict(type='StallHook', at=3, flag_file='{flag}')")
    die = write_config(setup_dir, 'die',
                       "dict(type='DieWhileSavingHook', at=4)")
    during = Killed(setup_dir / 'killed')
    writing = Killed(setup_dir / 'killed_writing')
    reference = start_logged(setup_dir, setup_dir / 'tiny.py',
                             setup_dir / 'uninterrupted')
    dying = start_logged(setup_dir, die, writing.work_dir)
    stalling = start_training(
        setup_dir,
        stall,
        during.work_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not flag.exists():
            assert stalling.poll() is None, 'training ended before the kill'
            assert time.time() < deadline, 'training never reached iter 3'
            time.sleep(0.2)
    finally:
        stalling.send_signal(signal.SIGKILL)
        stalling.wait()
    during.inspect(
        subprocess.CompletedProcess(stalling.args, stalling.returncode, '',
                                    ''))
    writing.inspect(finish(dying))
    resuming = [
        start_logged(setup_dir, setup_dir / 'tiny.py', killed.work_dir,
                     '--resume') for killed in (during, writing)
    ]
    uninterrupted = finish(reference)
    for killed, proc in zip((during, writing), resuming):
        killed.resumed = finish(proc)
    return uninterrupted, during, writing


@pytest.fixture(scope='module')
def uninterrupted(setup_dir, runs):
    result = runs[0]
    assert result.returncode == 0, result.stdout + result.stderr
    return setup_dir / 'uninterrupted' / f'iter_{MAX_ITERS}.pth'


@pytest.mark.slow
def test_sigkill_during_training(runs, uninterrupted):
    run = runs[1]
    work_dir = run.work_dir
    assert run.killed.returncode == -signal.SIGKILL
    assert run.pointer == str(work_dir / 'iter_2.pth')

    assert_resumed_at_iter_2(run.resumed)
    assert_same_training_state(work_dir / f'iter_{MAX_ITERS}.pth',
                               uninterrupted)


@pytest.mark.slow
def test_sigkill_while_writing_a_checkpoint(runs, uninterrupted):
    run = runs[2]
    work_dir = run.work_dir
    assert run.killed.returncode == -signal.SIGKILL, run.killed.stderr

    # The half-written file exists only under its temporary name, and the
    # pointer still names the complete checkpoint before it.
    [partial] = run.partial
    assert partial.name.startswith('.iter_4.')
    assert run.partial_problems[0] is not None
    assert 'iter_4.pth' not in run.names
    assert run.pointer == str(work_dir / 'iter_2.pth')

    # Resumed from the checkpoint the pointer names: training is
    # deterministic, so only the log tells a resume from a restart.
    assert_resumed_at_iter_2(run.resumed)
    assert not partial.exists()
    assert_same_training_state(work_dir / f'iter_{MAX_ITERS}.pth',
                               uninterrupted)
    assert sorted(p.name for p in work_dir.glob('*.pth*')) == [
        'iter_2.pth', 'iter_4.pth'
    ]


# --- The resume decisions, in process ----------------------------------------


def save(path, value=1.):
    torch.save({'meta': {'iter': 0}, 'w': torch.full((64, ), value)}, path)


def truncate(path):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


def fake_runner(work_dir, load_from=None, resume=True):
    return MagicMock(
        work_dir=str(work_dir), _resume=resume, _load_from=load_from)


def resume_choice(runner):
    ResumeFallbackHook().before_run(runner)
    return runner._load_from


def test_valid_pointer_is_used(tmp_path):
    save(tmp_path / 'iter_2.pth')
    save(tmp_path / 'iter_4.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert resume_choice(fake_runner(tmp_path)) == str(tmp_path / 'iter_2.pth')


@pytest.mark.parametrize('pointer', ['truncated', 'missing', 'empty', 'bytes'])
def test_broken_pointer_falls_back(tmp_path, pointer):
    save(tmp_path / 'iter_2.pth')
    save(tmp_path / 'iter_4.pth')
    # Written in place by mmengine's own hook and cut short by a kill.
    save(tmp_path / 'iter_6.pth')
    truncate(tmp_path / 'iter_6.pth')
    # A temporary file is never a candidate, however new.
    save(tmp_path / '.iter_8.1234.tmp.pth')
    content = {
        'truncated': str(tmp_path / 'iter_6.pth').encode(),
        'missing': str(tmp_path / 'iter_10.pth').encode(),
        'empty': b'',
        'bytes': b'\xff\xfe\x00',
    }[pointer]
    (tmp_path / 'last_checkpoint').write_bytes(content)
    runner = fake_runner(tmp_path)
    assert resume_choice(runner) == str(tmp_path / 'iter_4.pth')
    warning = runner.logger.warning.call_args[0][0]
    assert 'last_checkpoint' in warning and 'iter_4.pth' in warning


def test_no_pointer_takes_newest_complete(tmp_path):
    save(tmp_path / 'iter_2.pth')
    save(tmp_path / 'iter_10.pth')
    assert resume_choice(fake_runner(tmp_path)) == str(tmp_path /
                                                       'iter_10.pth')


def test_nothing_saved_starts_from_scratch(tmp_path):
    assert resume_choice(fake_runner(tmp_path)) is None
    assert resume_choice(fake_runner(tmp_path, resume=False)) is None


def test_broken_pointer_without_fallback_is_refused(tmp_path):
    save(tmp_path / 'iter_2.pth')
    truncate(tmp_path / 'iter_2.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    with pytest.raises(RuntimeError, match='Cannot resume.*unreadable'):
        resume_choice(fake_runner(tmp_path))


def test_broken_explicit_checkpoint_is_refused(tmp_path):
    save(tmp_path / 'iter_2.pth')
    save(tmp_path / 'iter_4.pth')
    truncate(tmp_path / 'iter_4.pth')
    with pytest.raises(RuntimeError, match='Cannot resume from .*iter_4'):
        resume_choice(fake_runner(tmp_path, str(tmp_path / 'iter_4.pth')))


# --- Saving and the random state, with mmengine's Runner ---------------------


class NoisyModel(BaseModel):
    """Its loss depends on the global torch random state (dropout)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 1)
        self.dropout = nn.Dropout(0.5)

    def forward(self, inputs, mode='tensor'):
        loss = self.linear(self.dropout(inputs)).pow(2).mean()
        return dict(loss=loss) if mode == 'loss' else loss


class RangeDataset(Dataset):

    def __len__(self):
        return 16

    def __getitem__(self, index):
        return dict(inputs=torch.linspace(0, 1, 8) * (index + 1))


def build_runner(work_dir,
                 max_iters,
                 resume=False,
                 save_rng_state=True,
                 custom_hooks=None):
    # The model is built before the Runner seeds: same initial weights.
    torch.manual_seed(0)
    return Runner(
        model=NoisyModel(),
        work_dir=str(work_dir),
        experiment_name=(f'noisy_{work_dir.parent.name}_{work_dir.name}_'
                         f'{max_iters}_{resume}'),
        train_dataloader=dict(
            dataset=RangeDataset(),
            sampler=dict(type='InfiniteSampler', shuffle=True),
            batch_size=4,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=dict(
            type='CosineAnnealingLR', by_epoch=False, begin=0, end=8),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(
                type='mmeformer.AtomicCheckpointHook',
                interval=2,
                by_epoch=False,
                max_keep_ckpts=1),
            resume_fallback=dict(type='mmeformer.ResumeFallbackHook'),
            **(dict(random_state=dict(
                type='mmeformer.RandomStateHook')) if save_rng_state else {})),
        custom_hooks=custom_hooks,
        resume=resume,
        randomness=dict(seed=0))


def final_weights(work_dir):
    return load_from_local(str(work_dir / 'iter_8.pth'), 'cpu')['state_dict']


@pytest.mark.parametrize('save_rng_state', [True, False])
def test_atomic_saves_and_random_state(tmp_path, save_rng_state):
    build_runner(tmp_path / 'whole', 8, save_rng_state=save_rng_state).train()
    build_runner(tmp_path / 'split', 4, save_rng_state=save_rng_state).train()
    # Only the newest checkpoint is kept, and nothing temporary.
    names = os.listdir(tmp_path / 'split')
    assert [n for n in names if '.pth' in n] == ['iter_4.pth']
    assert not [n for n in names if n.startswith('.')]
    ckpt = load_from_local(str(tmp_path / 'split' / 'iter_4.pth'), 'cpu')
    assert ('rng_states' in ckpt) == save_rng_state

    build_runner(
        tmp_path / 'split', 8, resume=True,
        save_rng_state=save_rng_state).train()
    whole = final_weights(tmp_path / 'whole')
    resumed = final_weights(tmp_path / 'split')
    # Dropout draws the same masks after resuming as without the stop
    # only if the random state travelled with the checkpoint.
    same = all(torch.equal(resumed[k], v) for k, v in whole.items())
    assert same == save_rng_state


class FailSavingHook(Hook):
    """Fail the save of iteration `at` before its file is written."""

    def __init__(self, at):
        self.at = at

    def before_save_checkpoint(self, runner, checkpoint):
        if checkpoint['meta']['iter'] == self.at:
            raise OSError('disk full')


def test_outdated_checkpoint_deleted_only_after_the_new_one(tmp_path):
    # mmengine's own hook deletes iter_2.pth before it writes iter_4.pth.
    runner = build_runner(tmp_path, 8, custom_hooks=[FailSavingHook(at=4)])
    with pytest.raises(OSError, match='disk full'):
        runner.train()
    names = sorted(n for n in os.listdir(tmp_path) if '.pth' in n)
    assert names == ['iter_2.pth']
    assert checkpoint_defect(str(tmp_path / 'iter_2.pth')) is None
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path /
                                                             'iter_2.pth')


def test_a_model_zoo_config_has_the_hooks():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'segmentation',
                 'fpn_eformerv2_s0_ade20k_40k.py'))
    hooks = {
        name: HOOKS.build(cfg.default_hooks[name])
        for name in ('checkpoint', 'resume_fallback', 'random_state')
    }
    assert isinstance(hooks['checkpoint'], AtomicCheckpointHook)
    assert isinstance(hooks['resume_fallback'], ResumeFallbackHook)
    assert isinstance(hooks['random_state'], RandomStateHook)
    # The host's checkpoint settings stay.
    assert (hooks['checkpoint'].interval,
            hooks['checkpoint'].by_epoch) == (4000, False)


def test_atomic_writes_only_where_no_other_backend_is_asked_for():
    local = AtomicCheckpointHook(interval=2, max_keep_ckpts=2)
    assert local.backend_args == dict(backend='atomic_local')
    # One more for mmengine, which deletes before it saves.
    assert (local.keep_latest, local.max_keep_ckpts) == (2, 3)
    for kwargs in (dict(out_dir='s3://bucket/work'),
                   dict(backend_args=dict(backend='local'))):
        hook = AtomicCheckpointHook(interval=2, **kwargs)
        assert hook.backend_args == kwargs.get('backend_args')
        assert not hook.writes_atomically
