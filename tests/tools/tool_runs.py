"""Configs and runners for the tool tests.

Configs derived from ours for the tiny datasets of tiny_datasets.py, and the
tools run as users run them: as scripts, from a scratch folder, several in
one interpreter (a subprocess) so that the hosts are imported once, or by
their ``main`` in this process.
"""
import json
import os
import os.path as osp
import runpy
import subprocess
import sys
import tempfile
import textwrap

from mmdet.datasets import CocoDataset
from tiny_datasets import make_coco

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools')

# Derived configs: the model as configured (bar its ImageNet weights, which
# the tests do not have), everything else shrunk to seconds.
# The V2-S0 ImageNet config on a tiny ImageNet of 32-pixel crops; the
# classification runs here and test_distillation_train.py add their model
# and schedule.
TINY_IMAGENET = """
_base_ = '{repo}/configs/classification/eformerv2_s0_in1k.py'
data_root = '{data}'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=40, edge='short'),
    dict(type='CenterCrop', crop_size=32),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=3, num_workers=0,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=3, num_workers=0,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
# The recipe's lr (1e-3) at this batch, one process.
auto_scale_lr = dict(base_batch_size=3)
"""

CLASSIFICATION = TINY_IMAGENET + """
# No teacher file here: train the student alone.
model = dict({backbone} teacher=None)
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


def write_config(path, template, data, pretrained=False):
    text = template.format(
        repo=REPO, data=data, backbone='' if pretrained else NO_PRETRAINED)
    path.write_text(textwrap.dedent(text) + NO_VALIDATION)
    return str(path)


def tool_env():
    """The environment of a tool run: this one, with the repository."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        filter(None, [REPO, env.get('PYTHONPATH')]))
    return env


def run_main(tool, *args, cwd):
    """Run ``main`` of tools/<tool> with ``args`` in ``cwd``, in this
    process: the runs of a test module share one start-up.

    Returns:
        str | None: What the tool exits with (its error message), None when
        it returns.
    """
    main = runpy.run_path(osp.join(TOOLS, tool))['main']
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        main(list(args))
    except SystemExit as e:
        return str(e.code)
    finally:
        os.chdir(previous)
    return None


def assert_ok(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


# Runs each tool as a script (`python tools/<tool> ...`), one after another
# in one interpreter, so that the hosts are imported once. Each run writes
# to files of its own at the descriptor level, as its own process would
# (loggers made at import time hold the original streams) and shows the
# warnings a process of its own would; an exception ends it with a
# traceback and status 1; the global instances it made (loggers, message
# hubs, visualizers, default scopes) are dropped after it, as its process
# exit would.
_IN_ONE_PROCESS = r'''
import json, os, runpy, sys, tempfile, traceback, warnings
from mmengine.utils import ManagerMixin


def managed_classes(cls=ManagerMixin):
    for sub in cls.__subclasses__():
        yield sub
        yield from managed_classes(sub)


def run(tool, args):
    sys.argv = [tool, *args]
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    # Warnings shown once per process show again.
    warnings.onceregistry.clear()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            warnings.catch_warnings():
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            runpy.run_path(tool, run_name='__main__')
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else int(
                e.code is not None)
            if isinstance(e.code, str):
                print(e.code, file=sys.stderr)
        except Exception:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
        return [code] + [
            os.pread(f.fileno(), os.fstat(f.fileno()).st_size,
                     0).decode(errors='replace') for f in (out, err)
        ]


runs, results_path, results = json.loads(sys.argv[1]), sys.argv[2], []
for tool, args in runs:
    before = {cls: set(cls._instance_dict) for cls in managed_classes()}
    results.append(run(tool, args))
    for cls in managed_classes():
        for name in set(cls._instance_dict) - before.get(cls, set()):
            for handler in getattr(cls._instance_dict.pop(name), 'handlers',
                                   []):
                handler.close()
with open(results_path, 'w') as f:
    json.dump(results, f)
'''


class ToolRuns:
    """``(tool, *args)`` tuples run as ``python tools/<tool> *args`` would,
    one after another in one interpreter started in the background: the
    tools' imports, the bulk of a short run's time, are paid once.

    Args:
        runs (tuple): ``(tool, *args)`` per run, in order.
        cwd (str): The working directory of all runs.
    """

    def __init__(self, *runs, cwd):
        self.spec = [[osp.join(TOOLS, tool), [str(arg) for arg in args]]
                     for tool, *args in runs]
        fd, self.results_file = tempfile.mkstemp(suffix='.json')
        os.close(fd)
        env = tool_env()
        # As tools/demo.py: spinning OpenMP threads slow down whatever else
        # runs on a small machine.
        env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
        self.log = tempfile.TemporaryFile('w+')
        self.proc = subprocess.Popen([
            sys.executable, '-c', _IN_ONE_PROCESS,
            json.dumps(self.spec), self.results_file
        ],
                                     cwd=cwd,
                                     env=env,
                                     stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     text=True)

    def results(self, timeout=600):
        """Wait for the runs; the exit status and output of each.

        Returns:
            list[subprocess.CompletedProcess]: One per run, in order.
        """
        self.proc.wait(timeout)
        self.log.seek(0)
        assert self.proc.returncode == 0, self.log.read()[-3000:]
        self.log.close()
        with open(self.results_file) as f:
            results = json.load(f)
        os.remove(self.results_file)
        return [
            subprocess.CompletedProcess(args, code, out, err)
            for args, (code, out, err) in zip(self.spec, results)
        ]


def run_tools_in_one_process(*runs, cwd):
    """Run ``(tool, *args)`` tuples as ``python tools/<tool> *args`` would,
    in one interpreter; the exit status and output of each (see
    :class:`ToolRuns`).

    Returns:
        list[subprocess.CompletedProcess]: One per run, in order.
    """
    return ToolRuns(*runs, cwd=cwd).results()
