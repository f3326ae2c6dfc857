"""Two CPU processes (gloo): sandwich training through tools/dist_train.sh
and the search through tools/dist_search.sh, on a tiny supernet."""
import hashlib
import inspect
import json
import os
import os.path as osp
import random
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import mmeformer.search  # noqa: F401  (registers the supernet classifier)
from mmeformer.demo.shapes import generate_shape_classes
from mmeformer.latency import (LatencyTable, predict_latency, space_blocks,
                               table_meta)
from mmeformer.models.backbones import EfficientFormerV2Space
from mmeformer.runtime import ConfigError
from mmeformer.testing import randomize_weights

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SHAPES_SUPERNET = osp.join(REPO, 'configs', 'search',
                           'eformerv2_supernet_shapes.py')
SIZE = 32


def state_hash(tensors):
    """A digest of every name, dtype, shape and value, in order."""
    digest = hashlib.sha256()
    for name, value in tensors.items():
        value = value.detach().cpu().contiguous()
        digest.update(f'{name} {value.dtype} {tuple(value.shape)}'.encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()


# Test-only hook, imported by both processes through `custom_imports`.
RECORDER = '''
import hashlib
import json
import os.path as osp

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RecordSandwichHook(Hook):
    """Per rank: the wrapper, each iteration's subnets and the size of every
    gradient that reached the stem (which all subnets use), the final
    weights' hash."""

    def _log(self, runner, kind, value):
        path = osp.join(runner.work_dir, f'{kind}_rank{get_rank()}.txt')
        with open(path, 'a') as f:
            f.write(json.dumps(value, sort_keys=True) + '\\n')

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train(self, runner):
        self._log(runner, 'wrapper', type(runner.model).__name__)
        self.grads = []
        stem = self._model(runner).backbone.stem.conv1.conv.weight
        stem.register_hook(
            lambda grad: self.grads.append(float(grad.abs().sum())))

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self._log(runner, 'archs', self._model(runner).last_archs)
        self._log(runner, 'grads', self.grads)
        self.grads = []

    def after_train(self, runner):
        model = self._model(runner)
        self._log(runner, 'params', state_hash(dict(model.named_parameters())))
''' + inspect.getsource(state_hash)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def read_json_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def run(args, tmp_path, timeout=300):
    env = dict(
        os.environ,
        PORT=str(free_port()),
        OMP_NUM_THREADS='1',
        OMP_WAIT_POLICY='PASSIVE',
        PYTHONPATH=os.pathsep.join(
            [str(tmp_path), os.environ.get('PYTHONPATH', '')]))
    result = subprocess.run(
        args,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope='module')
def tiny(tmp_path_factory, tiny_space):
    """A tiny supernet config on the shapes set (32 px, one image per class
    and split), inheriting the walkthrough's config."""
    tmp_path = tmp_path_factory.mktemp('dist_search')
    data = tmp_path / 'shapes_cls'
    generate_shape_classes(
        str(data), num_train=1, num_val=1, num_test=1, img_size=SIZE)
    (tmp_path / 'sandwich_helper_hooks.py').write_text(RECORDER)
    config = tmp_path / 'tiny_supernet.py'
    config.write_text(
        textwrap.dedent(f'''
        _base_ = {SHAPES_SUPERNET!r}
        custom_imports = dict(
            imports=['mmeformer', 'mmeformer.search',
                     'sandwich_helper_hooks'],
            allow_failed_imports=False)
        model = dict(
            backbone=dict(space={tiny_space!r}, attn_ref_size={SIZE}),
            head=dict(in_channels=48))
        train_dataloader = dict(
            batch_size=2,
            num_workers=0,
            persistent_workers=False,
            dataset=dict(
                data_root={str(data)!r},
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='RandomResizedCrop', scale={SIZE},
                         crop_ratio_range=(0.3, 1.0)),
                    dict(type='RandomFlip', prob=0.5,
                         direction='horizontal'),
                    dict(type='PackInputs'),
                ]))
        val_dataloader = dict(
            batch_size=4,
            num_workers=0,
            persistent_workers=False,
            dataset=dict(
                data_root={str(data)!r},
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='Resize', scale=({SIZE}, {SIZE})),
                    dict(type='PackInputs'),
                ]))
        test_dataloader = val_dataloader
        search = dict(input_size={SIZE}, calibration_batches=2,
                      scoring_batches=3, seed=0)
        train_cfg = dict(max_iters=2, val_interval=1000)
        param_scheduler = [dict(type='ConstantLR', factor=1., by_epoch=False)]
        default_hooks = dict(
            logger=dict(interval=1), checkpoint=dict(interval=2))
        custom_hooks = [dict(type='RecordSandwichHook')]
        # Another random stream on each rank: the subnets of a step must
        # still be the same everywhere.
        randomness = dict(seed=0, diff_rank_seed=True)
        '''))
    return tmp_path, config, EfficientFormerV2Space.from_dict(tiny_space)


@pytest.mark.slow
def test_two_processes_train_the_same_subnets_and_end_equal(tiny):
    tmp_path, config, space = tiny
    supernet = tmp_path / 'supernet'
    run([
        'bash', 'tools/dist_train.sh',
        str(config), '2', '--work-dir',
        str(supernet)
    ], tmp_path)
    ranks = (0, 1)
    for rank in ranks:
        assert read_json_lines(supernet / f'wrapper_rank{rank}.txt') == [
            'SandwichDistributedDataParallel'
        ]
    archs = [read_json_lines(supernet / f'archs_rank{r}.txt') for r in ranks]
    assert len(archs[0]) == 2 and archs[0] == archs[1]
    for step in archs[0]:
        assert len(step) == 4
        assert step[:2] == [space.largest(), space.smallest()]
    # Each of the four subnets of every step sent a gradient to the stem,
    # on both ranks.
    for rank in ranks:
        grads = read_json_lines(supernet / f'grads_rank{rank}.txt')
        assert len(grads) == 2
        assert all(len(step) == 4 and min(step) > 0 for step in grads)
    # The averaged gradients keep the ranks' weights equal.
    params = [read_json_lines(supernet / f'params_rank{r}.txt') for r in ranks]
    assert params[0] == params[1]
    assert (supernet / 'iter_2.pth').is_file()


@pytest.fixture(scope='module')
def search_inputs(tiny):
    """A supernet checkpoint whose subnets predict differently (random
    weights with every path active), a latency table of 0.5 ms per block
    and a budget no single action meets."""
    tmp_path, config, space = tiny
    cfg = Config.fromfile(str(config), import_custom_modules=False)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    ckpt = tmp_path / 'random_supernet.pth'
    torch.save(dict(state_dict=randomize_weights(model).state_dict()), ckpt)
    table = tmp_path / 'table.json'
    meta = table_meta(space, 'torch', 'fp32', SIZE, threads=1)
    entries = {b.key: 0.5 for b in space_blocks(space, False)}
    LatencyTable(meta, entries).save(str(table))
    largest = predict_latency(space.largest(), LatencyTable.load(str(table)))
    return str(ckpt), str(table), largest - 1.1


@pytest.mark.slow
def test_two_processes_score_the_candidates_as_one(tiny, search_inputs):
    tmp_path, config, _ = tiny
    ckpt, table, budget = search_inputs
    # One step scores every candidate and writes no outputs yet.
    options = [
        '--latency-table', table, '--max-latency',
        str(budget), '--max-steps', '1'
    ]
    run([
        sys.executable, 'tools/search.py',
        str(config), ckpt, '--work-dir',
        str(tmp_path / 'one')
    ] + options, tmp_path)
    run([
        'bash', 'tools/dist_search.sh',
        str(config), ckpt, '2', '--work-dir',
        str(tmp_path / 'two')
    ] + options, tmp_path)

    def path(name):
        with open(tmp_path / name / 'search_state.json') as f:
            return json.load(f)['path']

    one, two = path('one'), path('two')
    assert len(one) == 2 and len(one[1]['candidates']) > 4
    assert two == one
    accuracies = [c['accuracy'] for c in one[1]['candidates']]
    assert len(set(accuracies)) > 1, 'the subnets are told apart'

    # Continued to the end: rank 0 measures the arch predicted within the
    # budget and both ranks take its measurement.
    run([
        'bash', 'tools/dist_search.sh',
        str(config), ckpt, '2', '--work-dir',
        str(tmp_path / 'two'), '--latency-table', table, '--max-latency',
        str(budget)
    ], tmp_path)
    with open(tmp_path / 'two' / 'search_state.json') as f:
        state = json.load(f)
    assert state['done'] and state['path'][:2] == one
    assert state['path'][-1]['measured_ms'] <= budget
    assert (tmp_path / 'two' / 'found.pth').is_file()


@pytest.mark.slow
def test_the_evolutionary_search_on_two_processes(tiny, search_inputs):
    tmp_path, config, space = tiny
    ckpt, table, budget = search_inputs
    work_dir = tmp_path / 'evolution'
    run([
        'bash', 'tools/dist_search.sh',
        str(config), ckpt, '2', '--latency-table', table, '--max-latency',
        str(budget), '--strategy', 'evolution', '--work-dir',
        str(work_dir), '--cfg-options', 'search.evolution.generations=2',
        'search.evolution.population=3'
    ], tmp_path)
    with open(work_dir / 'search_state.json') as f:
        state = json.load(f)
    assert state['done'] and state['settings']['strategy'] == 'evolution'
    scored = [m for generation in state['generations'] for m in generation]
    assert [len(g) for g in state['generations']] == [3, 3]
    assert all(m['latency_ms'] <= budget for m in scored)
    assert all(space.contains(m['arch']) for m in scored)
    found = state['path'][-1]
    assert found['accuracy'] == max(m['accuracy'] for m in scored)
    for name in ('found.py', 'found.pth', 'search_path.csv',
                 'search_path.png'):
        assert (work_dir / name).is_file(), name


@pytest.mark.slow
def test_extract_writes_each_arch_with_its_own_batch_statistics(
        tiny, search_inputs):
    """``--extract`` on two processes: one line per arch, and each written
    checkpoint holds the arch recalibrated as a search candidate is (not the
    supernet's shared statistics), loads strictly into a plain classifier
    and scores the reported top-1; an arch outside the space is refused
    before anything is written."""
    from mmeformer.search import extract_subnet, subnet_model_config
    from mmeformer.search.session import SearchSession
    tmp_path, config, space = tiny
    ckpt, table, _ = search_inputs
    work_dir = tmp_path / 'extract'
    mid = space.sample(random.Random(3))
    result = run([
        'bash', 'tools/dist_search.sh',
        str(config), ckpt, '2', '--latency-table', table, '--extract',
        'largest', 'smallest',
        json.dumps(mid), '--work-dir',
        str(work_dir)
    ], tmp_path)
    rows = [
        line.split('|')[1:-1] for line in result.stdout.splitlines() if
        line.count('|') == 7 and 'subnet |' not in line and '---' not in line
    ]
    assert [r[0].strip() for r in rows] == ['largest', 'smallest', 'subnet2']

    cfg = Config.fromfile(str(config), import_custom_modules=False)
    session = SearchSession(
        cfg, ckpt, table, None, None, str(work_dir), log=lambda line: None)
    scorer = session.build_scorer()
    shared = {k: v.clone() for k, v in scorer.model.state_dict().items()}
    for row, arch in zip(rows, [space.largest(), space.smallest(), mid]):
        name, top1, predicted = (c.strip() for c in row[:3])
        assert float(predicted) == pytest.approx(
            session.latency(arch), abs=1e-3)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            plain = MODELS.build(subnet_model_config(cfg.model, arch))
        written = torch.load(work_dir / f'{name}.pth')['state_dict']
        plain.load_state_dict(written, strict=True)
        # The shared statistics are not what was written ...
        scorer.model.load_state_dict(shared)
        unrecalibrated, _ = extract_subnet(scorer.model, arch, plain)
        assert any(not torch.equal(written[k], unrecalibrated[k])
                   for k in written if k.endswith('running_var'))
        # ... a search candidate's are, and so is its score.
        assert float(top1) == pytest.approx(scorer.score(arch), abs=0.01)
        recalibrated, _ = extract_subnet(scorer.model, arch, plain)
        assert all(torch.equal(written[k], recalibrated[k]) for k in written)
        assert (work_dir / f'{name}.py').is_file()

    outside = dict(mid, channels=[12] + mid['channels'][1:])
    with pytest.raises(ConfigError, match='^bad: Stage 0 is 12 channels'):
        SearchSession(
            cfg,
            ckpt,
            table,
            None,
            None,
            str(tmp_path / 'refused'),
            log=lambda line: None).extract({'bad': outside})
    assert not (tmp_path / 'refused').exists()
