"""tools/train.py and tools/test.py, end to end, for each host.

Per task, on a tiny dataset in the host's format (see tiny_datasets.py) and
a config derived from ours (small images, V2-S0 at full size): train a few
iterations, evaluate the checkpoint with the host's metric, draw the
predictions and dump them (they must be the checkpoint's, as
mmeformer.apis gives them), then resume to a longer schedule; segmentation
also evaluates a checkpoint of another variant with --partial-load. The
tools run
as scripts, as users run them; the runs of a task follow one another in one
interpreter of their own, the tasks side by side (see
tool_runs.ToolRuns). Missing datasets and checkpoints must stop the tools
with a message naming the path, before any model is built.
"""
import glob
import json
import os
import os.path as osp
import pickle
import runpy
import subprocess

import pytest
import torch
from tiny_datasets import make_ade20k, make_imagenet
from tool_runs import (CLASSIFICATION, DETECTION, SEGMENTATION, TOOLS,
                       ToolRuns, assert_ok, make_coco80, write_config)

import mmeformer  # noqa: F401
from mmeformer.apis import inference_model, init_model
from mmeformer.models import EfficientFormerV2
from mmeformer.runtime import (MissingResourceError, UnknownHostError,
                               UnsupportedOptionError, evaluate, train)
from mmeformer.utils import load_from_local

TASKS = {
    # task: (config template, dataset maker, first and resumed lengths,
    #        checkpoint names, metric keys, test images)
    'classification': (CLASSIFICATION, make_imagenet, 'train_cfg.max_epochs',
                       (1, 2), 'epoch_{}.pth', ['accuracy/top1'], 3),
    'detection': (DETECTION, make_coco80, 'train_cfg.max_epochs', (1, 2),
                  'epoch_{}.pth', ['coco/bbox_mAP', 'coco/segm_mAP'], 2),
    'segmentation': (SEGMENTATION, make_ade20k, 'train_cfg.max_iters', (2, 4),
                     'iter_{}.pth', ['mIoU'], 2),
}

# Test-only hook, imported by a tools/test.py run through `custom_imports`:
# the model's state before and after the Runner loads the checkpoint.
RECORD_WEIGHTS = '''
import os.path as osp

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RecordWeightsHook(Hook):

    def _save(self, runner, name):
        state = {k: v.detach().clone() for k, v in
                 runner.model.state_dict().items()}
        torch.save(state, osp.join(runner.work_dir, name))

    def before_run(self, runner):
        self._save(runner, 'before_load.pth')

    def before_test(self, runner):
        self._save(runner, 'after_load.pth')
'''
PARTIAL = """
_base_ = './segmentation.py'
custom_imports = dict(
    imports=['mmeformer', 'record_weights'], allow_failed_imports=False)
custom_hooks = [dict(type='RecordWeightsHook')]
"""


def random_backbone_checkpoint(path, arch):
    """A backbone of another variant, every tensor random, as a checkpoint
    of a dense model (``backbone.`` keys)."""
    generator = torch.Generator().manual_seed(3)
    state = {
        'backbone.' + k: (torch.randn(v.shape, generator=generator)
                          if v.is_floating_point() else v + 7)
        for k, v in EfficientFormerV2(arch).state_dict().items()
    }
    torch.save(dict(state_dict=state, meta={}), path)
    return state


class RoundTrip:
    """A task's config, data and work dir, and its tool runs: a first
    short training, a test of its checkpoint, and the training resumed to
    a longer schedule."""

    def __init__(self, task, root):
        (template, make_data, self.length_key, self.lengths, self.ckpt,
         self.metric_keys, self.num_test_images) = TASKS[task]
        self.task = task
        self.root = root
        self.data = make_data(str(root / 'data'))
        self.config = write_config(root / f'{task}.py', template, self.data)
        self.work_dir = str(root / 'work')
        self.show_dir = root / 'show'
        self.out = root / 'preds.pkl'
        self.test_dir = root / 'test'
        first, longer = self.lengths
        self.runs = [
            self.train('--cfg-options', f'{self.length_key}={first}'),
            # The first checkpoint: testing does not depend on resuming.
            ('test.py', self.config, self.checkpoint(first), '--work-dir',
             self.test_dir, '--show-dir', self.show_dir, '--out', self.out),
            self.train('--resume', '--cfg-options',
                       f'{self.length_key}={longer}'),
        ]
        if task == 'segmentation':
            (root / 'record_weights.py').write_text(RECORD_WEIGHTS)
            (root / 'partial.py').write_text(PARTIAL)
            self.partial_file = str(root / 's1.pth')
            self.partial_state = random_backbone_checkpoint(
                self.partial_file, 's1')
            self.partial_dir = root / 'partial'
            self.runs.append(
                ('test.py', root / 'partial.py', self.partial_file,
                 '--partial-load', '--work-dir', self.partial_dir))

    def checkpoint(self, n):
        return osp.join(self.work_dir, self.ckpt.format(n))

    def train(self, *args):
        return ('train.py', self.config, '--work-dir', self.work_dir, *args)


@pytest.fixture(scope='module')
def tool_runs(tmp_path_factory):
    """Every task's round trip, and train.py without its dataset and
    test.py without its checkpoint: one interpreter per task, side by
    side."""
    trips = {
        task: RoundTrip(task, tmp_path_factory.mktemp(task))
        for task in TASKS
    }
    root = tmp_path_factory.mktemp('missing')
    det_config = write_config(root / 'det.py', DETECTION,
                              str(root / 'no_coco'))
    seg_config = write_config(root / 'seg.py', SEGMENTATION,
                              make_ade20k(str(root / 'ade')))
    # They stop before a Runner is built: ahead of the shortest round trip.
    missing = [('train.py', det_config),
               ('test.py', seg_config, 'work_dirs/x/iter_4.pth')]
    batches = {
        task:
        ToolRuns(
            *(missing if task == 'classification' else []),
            *trip.runs,
            cwd=str(root if task == 'classification' else trip.root))
        for task, trip in trips.items()
    }
    results = {task: batch.results() for task, batch in batches.items()}
    no_dataset, no_checkpoint = results['classification'][:2]
    del results['classification'][:2]
    for task, trip in trips.items():
        trip.trained, trip.tested, trip.resumed = results[task][:3]
        trip.partial = results[task][3:]
    return trips, (root, no_dataset, no_checkpoint)


@pytest.fixture(params=list(TASKS))
def trained(request, tool_runs):
    """A task after its runs; the first training succeeded."""
    trip = tool_runs[0][request.param]
    assert_ok(trip.trained)
    return trip


@pytest.mark.slow
def test_train_writes_a_checkpoint(trained):
    ckpt = load_from_local(trained.checkpoint(trained.lengths[0]))
    assert any(k.startswith('backbone.') for k in ckpt['state_dict'])
    assert 'optimizer' in ckpt and 'message_hub' in ckpt


@pytest.mark.slow
def test_resume_continues_from_the_saved_iteration(trained):
    first, longer = trained.lengths
    saved = load_from_local(trained.checkpoint(first))['meta']
    proc = trained.resumed
    assert_ok(proc)
    log = proc.stdout + proc.stderr
    assert f"resumed epoch: {saved['epoch']}, iter: {saved['iter']}" in log
    meta = load_from_local(trained.checkpoint(longer))['meta']
    # Continued, not restarted: twice the schedule, twice the iterations.
    assert meta['iter'] == 2 * saved['iter']
    if trained.length_key.endswith('max_epochs'):
        assert meta['epoch'] == longer


@pytest.mark.slow
def test_test_evaluates_draws_and_dumps(trained):
    assert_ok(trained.tested)
    metrics_files = glob.glob(str(trained.test_dir / '*' / '*.json'))
    assert len(metrics_files) == 1
    with open(metrics_files[0]) as f:
        metrics = json.load(f)
    for key in trained.metric_keys:
        # Percentages from mmpretrain and mmseg, fractions from COCO.
        high = 1 if key.startswith('coco/') else 100
        assert isinstance(metrics[key], (int, float)), metrics
        assert 0 <= metrics[key] <= high, metrics
    drawn = [
        path for path in glob.glob(
            str(trained.show_dir / '**' / '*'), recursive=True)
        if path.endswith(('.png', '.jpg', '.JPEG'))
    ]
    assert len(drawn) == trained.num_test_images
    with open(trained.out, 'rb') as f:
        assert len(pickle.load(f)) == trained.num_test_images


def predictions(sample):
    """The prediction tensors of a data sample, or of its dict as dumped
    by tools/test.py --out, by name."""
    if not isinstance(sample, dict):
        sample = sample.to_dict()
    if 'pred_instances' in sample:
        return {
            name: sample['pred_instances'][name]
            for name in ('bboxes', 'scores', 'labels')
        }
    if 'pred_sem_seg' in sample:
        return dict(
            seg_logits=sample['seg_logits']['data'],
            pred_sem_seg=sample['pred_sem_seg']['data'])
    return dict(pred_score=sample['pred_score'])


@pytest.mark.slow
def test_test_predicts_with_the_checkpoint(trained):
    """What tools/test.py dumped is what mmeformer.apis predicts with the
    checkpoint for the same images: tools/test.py evaluated the trained
    weights, not the model's initial ones."""
    assert_ok(trained.tested)
    with open(trained.out, 'rb') as f:
        dumped = pickle.load(f)
    model = init_model(trained.config, trained.checkpoint(trained.lengths[0]))
    results = inference_model(model, [sample['img_path'] for sample in dumped])
    assert len(dumped) == len(results) == trained.num_test_images
    for sample, result in zip(dumped, results):
        expected, got = predictions(sample), predictions(result)
        assert expected.keys() == got.keys()
        for name, value in expected.items():
            torch.testing.assert_close(
                got[name].cpu(), value, rtol=1e-4, atol=1e-4, msg=name)


@pytest.mark.slow
def test_partial_load_loads_what_fits_and_keeps_the_rest(tool_runs):
    """tools/test.py --partial-load with a V2-S1 backbone for the S0
    segmentor: every tensor that fits holds the file's values, every other
    tensor its value before the load."""
    trip = tool_runs[0]['segmentation']
    proc, = trip.partial
    assert_ok(proc)
    assert glob.glob(str(trip.partial_dir / '*' / '*.json'))
    before = torch.load(
        str(trip.partial_dir / 'before_load.pth'), weights_only=True)
    after = torch.load(
        str(trip.partial_dir / 'after_load.pth'), weights_only=True)
    assert after.keys() == before.keys()
    fits = [
        k for k in after if k in trip.partial_state
        and trip.partial_state[k].shape == after[k].shape
    ]
    # Both kinds exist: the stem and the first stages fit, later stages
    # (wider in S1) and everything outside the backbone do not.
    assert fits and len(fits) < len(after)
    for key, value in after.items():
        if key in fits:
            assert torch.equal(value, trip.partial_state[key]), key
            assert not torch.equal(value, before[key]), key
        else:
            assert torch.equal(value, before[key]), key


@pytest.fixture
def missing_inputs(tool_runs):
    """train.py without its dataset and test.py without its checkpoint."""
    return tool_runs[1]


@pytest.mark.slow
def test_missing_dataset_stops_train_cleanly(missing_inputs):
    root, proc, _ = missing_inputs
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    assert f"{root / 'no_coco'}/ does not exist" in proc.stderr
    assert 'cocodataset.org' in proc.stderr
    assert not (root / 'work_dirs').exists(), 'nothing may start'


@pytest.mark.slow
def test_missing_checkpoint_stops_test_cleanly(missing_inputs):
    _, _, proc = missing_inputs
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    assert 'work_dirs/x/iter_4.pth does not exist' in proc.stderr
    assert 'tools/train.py' in proc.stderr


def test_missing_imagenet_weights_are_named(tmp_path, monkeypatch):
    """The dense configs' default init checkpoint, before any build."""
    config = write_config(
        tmp_path / 'det.py',
        DETECTION,
        make_coco80(str(tmp_path / 'coco')),
        pretrained=True)
    # The configs' checkpoint paths are relative to the working directory.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingResourceError) as error:
        train(config)
    message = str(error.value)
    assert 'checkpoints/efficientformerv2_s0_in1k.pth does not exist' in (
        message)
    assert 'model.backbone.init_cfg.checkpoint' in message
    assert 'tools/model_converters' in message


def test_each_missing_imagenet_folder_is_named(tmp_path):
    data = make_imagenet(str(tmp_path / 'imagenet'))
    config = write_config(tmp_path / 'cls.py', CLASSIFICATION, data)
    os.rename(osp.join(data, 'train'), osp.join(data, 'moved'))
    os.remove(osp.join(data, 'meta', 'train.txt'))
    with pytest.raises(MissingResourceError) as error:
        train(config, work_dir=str(tmp_path / 'work'))
    # mmpretrain's ImageNet reads <data_root>/<split> without a meta list.
    assert [(path, where) for path, where, _ in error.value.problems
            ] == [(osp.join(data, 'train'), 'train_dataloader.dataset.split')]
    assert 'image-net.org' in str(error.value)
    assert not (tmp_path / 'work').exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU behaviour')
def test_amp_on_cpu_is_refused(tmp_path):
    config = write_config(tmp_path / 'seg.py', SEGMENTATION,
                          make_ade20k(str(tmp_path / 'ade')))
    with pytest.raises(UnsupportedOptionError, match='--amp needs a CUDA'):
        train(config, amp=True)


def test_a_config_outside_the_hosts_is_refused(tmp_path):
    path = tmp_path / 'other.py'
    path.write_text("default_scope = 'mmyolo'\n")
    with pytest.raises(UnknownHostError, match='mmdet'):
        train(str(path))


def test_predictions_are_dumped_to_pickle_files_only(tmp_path):
    config = write_config(tmp_path / 'seg.py', SEGMENTATION,
                          make_ade20k(str(tmp_path / 'ade')))
    with pytest.raises(UnsupportedOptionError, match='.pkl'):
        evaluate(config, 'any.pth', out=str(tmp_path / 'preds.json'))


@pytest.mark.parametrize('tool', [
    'train.py', 'test.py', 'analysis_tools/get_flops.py', 'dist_train.sh',
    'dist_test.sh', 'slurm_train.sh', 'slurm_test.sh'
])
def test_help(tool, capsys):
    path = osp.join(TOOLS, tool)
    if tool.endswith('.sh'):
        proc = subprocess.run(['bash', path, '--help'],
                              capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
        text = proc.stdout
    else:
        # In-process: the scripts only parse arguments when run as main.
        parse_args = runpy.run_path(path)['parse_args']
        with pytest.raises(SystemExit) as exit_info:
            parse_args(['--help'])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
    assert 'usage' in text.lower()
    assert len(text.splitlines()) > 5
