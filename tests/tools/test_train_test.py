"""tools/train.py and tools/test.py, end to end, for each host.

Per task, on a tiny dataset in the host's format (see tiny_datasets.py) and
a config derived from ours (small images, V2-S0 at full size): train a few
iterations, resume to a longer schedule, then evaluate the checkpoint with
the host's metric, draw the predictions and dump them. The tools run as
subprocesses, as users run them. Missing datasets and checkpoints must stop
the tools with a message naming the path, before any model is built.
"""
import glob
import json
import os
import os.path as osp
import pickle
import runpy
import subprocess
import sys
import textwrap

import pytest
import torch
from mmdet.datasets import CocoDataset
from tiny_datasets import make_ade20k, make_coco, make_imagenet

import mmeformer  # noqa: F401
from mmeformer.apis import (MissingResourceError, UnknownHostError,
                            UnsupportedOptionError, evaluate, train)
from mmeformer.utils import load_from_local

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools')

# Derived configs: the model as configured (bar its ImageNet weights, which
# the tests do not have), everything else shrunk to seconds.
CLASSIFICATION = """
_base_ = '{repo}/configs/classification/eformerv2_s0_in1k.py'
data_root = '{data}'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=48),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=56, edge='short'),
    dict(type='CenterCrop', crop_size=48),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=3, num_workers=0,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=3, num_workers=0,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
model = dict({backbone})
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4)
]
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1))
"""

DETECTION = """
_base_ = '{repo}/configs/detection/maskrcnn_eformerv2_s0_coco.py'
data_root = '{data}/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(
        data_root=data_root, ann_file='annotations/train.json',
        data_prefix=dict(img='train/'), pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(
        data_root=data_root, ann_file='annotations/val.json',
        data_prefix=dict(img='val/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
model = dict(
    {backbone}
    train_cfg=dict(
        rpn_proposal=dict(max_per_img=100),
        rcnn=dict(sampler=dict(num=64))),
    # An untrained detector scores every class alike: keep a few boxes
    # regardless of score so that the metric has masks to evaluate.
    test_cfg=dict(
        rpn=dict(max_per_img=50),
        rcnn=dict(score_thr=0., max_per_img=5)))
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1))
"""

SEGMENTATION = """
_base_ = '{repo}/configs/segmentation/fpn_eformerv2_s0_ade20k_40k.py'
data_root = '{data}'
crop_size = (64, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 64), keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
model = dict({backbone} data_preprocessor=dict(size=crop_size))
train_cfg = dict(max_iters=2)
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=2))
"""

# Without the ImageNet weights the backbone starts from its own init.
NO_PRETRAINED = 'backbone=dict(init_cfg=None),'
# Evaluating is tools/test.py's part: training validates nothing.
NO_VALIDATION = 'val_dataloader = None\nval_cfg = None\nval_evaluator = None\n'


def make_coco80(root):
    """A tiny COCO with the 80 classes the configured detector predicts."""
    return make_coco(root, CocoDataset.METAINFO['classes'])


TASKS = {
    # task: (config template, dataset maker, first and resumed lengths,
    #        checkpoint names, metric keys, test images)
    'classification': (CLASSIFICATION, make_imagenet, 'train_cfg.max_epochs',
                       (1, 2), 'epoch_{}.pth', ['accuracy/top1'], 3),
    'detection': (DETECTION, make_coco80, 'train_cfg.max_epochs', (1, 2),
                  'epoch_{}.pth', ['coco/bbox_mAP', 'coco/segm_mAP'], 2),
    'segmentation': (SEGMENTATION, make_ade20k, 'train_cfg.max_iters',
                     (2, 4), 'iter_{}.pth', ['mIoU'], 2),
}


def write_config(path, template, data, pretrained=False):
    text = template.format(
        repo=REPO, data=data, backbone='' if pretrained else NO_PRETRAINED)
    path.write_text(textwrap.dedent(text) + NO_VALIDATION)
    return str(path)


def run_tool(tool, *args, cwd):
    """Run tools/<tool> with this interpreter; return the finished process.

    ``cwd`` is a scratch folder: relative paths in the configs
    (``checkpoints/...``, ``work_dirs/...``) resolve inside it.
    """
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        filter(None, [REPO, env.get('PYTHONPATH')]))
    return subprocess.run([sys.executable, osp.join(TOOLS, tool), *args],
                          cwd=cwd,
                          env=env,
                          capture_output=True,
                          text=True)


def assert_ok(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


class RoundTrip:
    """A task's config, data and work dir, shared by its tests."""

    def __init__(self, task, root):
        (template, make_data, self.length_key, self.lengths, self.ckpt,
         self.metric_keys, self.num_test_images) = TASKS[task]
        self.task = task
        self.root = root
        self.data = make_data(str(root / 'data'))
        self.config = write_config(root / f'{task}.py', template, self.data)
        self.work_dir = str(root / 'work')

    def checkpoint(self, n):
        return osp.join(self.work_dir, self.ckpt.format(n))

    def train(self, *args):
        return run_tool('train.py', self.config, '--work-dir', self.work_dir,
                        *args, cwd=str(self.root))


@pytest.fixture(scope='module', params=list(TASKS))
def trained(request, tmp_path_factory):
    """A task after a first short training run."""
    trip = RoundTrip(request.param, tmp_path_factory.mktemp(request.param))
    proc = trip.train('--cfg-options',
                      f'{trip.length_key}={trip.lengths[0]}')
    assert_ok(proc)
    return trip


def test_train_writes_a_checkpoint(trained):
    ckpt = load_from_local(trained.checkpoint(trained.lengths[0]))
    assert any(k.startswith('backbone.') for k in ckpt['state_dict'])
    assert 'optimizer' in ckpt and 'message_hub' in ckpt


def test_resume_continues_from_the_saved_iteration(trained):
    first, longer = trained.lengths
    saved = load_from_local(trained.checkpoint(first))['meta']
    proc = trained.train('--resume', '--cfg-options',
                         f'{trained.length_key}={longer}')
    assert_ok(proc)
    log = proc.stdout + proc.stderr
    assert f"resumed epoch: {saved['epoch']}, iter: {saved['iter']}" in log
    meta = load_from_local(trained.checkpoint(longer))['meta']
    # Continued, not restarted: twice the schedule, twice the iterations.
    assert meta['iter'] == 2 * saved['iter']
    if trained.length_key.endswith('max_epochs'):
        assert meta['epoch'] == longer


def test_test_evaluates_draws_and_dumps(trained):
    first, longer = trained.lengths
    ckpt = trained.checkpoint(longer)
    if not osp.exists(ckpt):
        ckpt = trained.checkpoint(first)
    show_dir = trained.root / 'show'
    out = trained.root / 'preds.pkl'
    test_dir = trained.root / 'test'
    proc = run_tool(
        'test.py',
        trained.config,
        ckpt,
        '--work-dir',
        str(test_dir),
        '--show-dir',
        str(show_dir),
        '--out',
        str(out),
        cwd=str(trained.root))
    assert_ok(proc)
    metrics_files = glob.glob(str(test_dir / '*' / '*.json'))
    assert len(metrics_files) == 1
    with open(metrics_files[0]) as f:
        metrics = json.load(f)
    for key in trained.metric_keys:
        assert key in metrics, metrics
    drawn = [
        path for path in glob.glob(str(show_dir / '**' / '*'), recursive=True)
        if path.endswith(('.png', '.jpg', '.JPEG'))
    ]
    assert len(drawn) == trained.num_test_images
    with open(out, 'rb') as f:
        assert len(pickle.load(f)) == trained.num_test_images


def test_missing_dataset_stops_train_cleanly(tmp_path):
    config = write_config(tmp_path / 'det.py', DETECTION,
                          str(tmp_path / 'no_coco'))
    proc = run_tool('train.py', config, cwd=str(tmp_path))
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    assert f"{tmp_path / 'no_coco'}/ does not exist" in proc.stderr
    assert 'cocodataset.org' in proc.stderr
    assert not (tmp_path / 'work_dirs').exists(), 'nothing may start'


def test_missing_checkpoint_stops_test_cleanly(tmp_path):
    config = write_config(tmp_path / 'seg.py', SEGMENTATION,
                          make_ade20k(str(tmp_path / 'ade')))
    proc = run_tool('test.py', config, 'work_dirs/x/iter_4.pth',
                    cwd=str(tmp_path))
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
    assert [(path, where) for path, where, _ in error.value.problems] == [
        (osp.join(data, 'train'), 'train_dataloader.dataset.split')
    ]
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
