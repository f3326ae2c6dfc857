"""The distillation recipe end to end, through tools/train.py and test.py.

The V2-S0 ImageNet config (distillation, repeated augmentation, AGC,
SyncBN), on tiny generated images, with a tiny timm teacher of random
weights placed by tools/model_converters/timm_teacher_to_mmeformer.py from
a DeiT-style file: the loss goes down, the checkpoint holds the student
only, training resumes, and testing neither builds nor reads the teacher.
The tools' ``main`` runs in this process, from a scratch folder as the
working directory: the runs share one start-up, which costs more than
they do.
"""
import glob
import json
import os
import os.path as osp
import runpy
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS
from timm import create_model
from tiny_datasets import make_imagenet
from tool_runs import REPO, TINY_IMAGENET, TOOLS, run_main

import mmeformer  # noqa: F401
from mmeformer.runtime import MissingResourceError, train
from mmeformer.utils import load_from_local

TEACHER_FILE = 'checkpoints/teacher.pth'
CONVERTER = runpy.run_path(
    osp.join(TOOLS, 'model_converters',
             'timm_teacher_to_mmeformer.py'))['main']

CONFIG = TINY_IMAGENET + """
test_evaluator = dict(type='Accuracy', topk=(1, ))
data_preprocessor = dict(num_classes=3)
val_dataloader = None
val_cfg = None
val_evaluator = None
model = dict(
    backbone=dict(init_cfg=None),
    head=dict(num_classes=3),
    teacher=dict(
        model_name='test_byobnet', num_classes=3,
        init_cfg=dict(checkpoint='{teacher}')))
param_scheduler = []
train_cfg = dict(max_epochs={epochs})
randomness = dict(seed=0)
default_hooks = dict(logger=dict(interval=1))
"""
EPOCHS = 4


def place_teacher(root, num_classes=3):
    """A random tiny timm classifier, saved as DeiT publishes its teacher
    (nested under 'model') and placed by the converter tool."""
    torch.manual_seed(0)
    teacher = create_model('test_byobnet', num_classes=num_classes)
    src = osp.join(root, 'deit_style_teacher.pth')
    torch.save({'model': teacher.state_dict()}, src)
    assert CONVERTER([
        src, '--model', 'test_byobnet', '--num-classes',
        str(num_classes), '--out',
        osp.join(root, TEACHER_FILE)
    ]) == 0
    return teacher


def write_config(root, data, epochs=EPOCHS):
    path = osp.join(root, 'distill.py')
    with open(path, 'w') as f:
        f.write(
            textwrap.dedent(
                CONFIG.format(
                    repo=REPO, data=data, teacher=TEACHER_FILE,
                    epochs=epochs)))
    return path


def iteration_losses(work_dir):
    """The logged losses of each iteration, from the run's scalars.json."""
    rows = []
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            rows += [json.loads(line) for line in f]
    return [row for row in rows if 'loss' in row]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('distill'))
    data = make_imagenet(
        osp.join(root, 'imagenet'),
        num_classes=3,
        per_class=dict(train=3, val=1),
        size=40)
    place_teacher(root)
    config = write_config(root, data)
    work_dir = osp.join(root, 'work')
    assert run_main(
        'train.py', config, '--work-dir', work_dir, cwd=root) is None
    return root, config, work_dir


def test_the_teacher_file_is_what_timm_saved(tmp_path):
    teacher = place_teacher(str(tmp_path))
    saved = load_from_local(str(tmp_path / TEACHER_FILE))
    assert saved['meta']['model_name'] == 'test_byobnet'
    expected = teacher.state_dict()
    assert list(saved['state_dict']) == list(expected)
    for key, value in expected.items():
        assert torch.equal(saved['state_dict'][key], value)


def test_converter_refuses_weights_of_another_model(tmp_path, capsys):
    torch.save({'model': create_model('test_byobnet').state_dict()},
               str(tmp_path / 'src.pth'))
    assert CONVERTER([
        str(tmp_path / 'src.pth'), '--num-classes', '3', '--out',
        str(tmp_path / 'out.pth')
    ]) == 1
    assert "does not hold the weights of timm's regnety_160" in (
        capsys.readouterr().err)
    assert not (tmp_path / 'out.pth').exists()


@pytest.mark.slow
def test_training_distils_and_the_loss_goes_down(trained):
    _, _, work_dir = trained
    rows = iteration_losses(work_dir)
    # RepeatAugSampler: 9 images, each epoch 3 of them thrice, 3 per batch.
    assert len(rows) == EPOCHS * 3
    for row in rows:
        # Both terms are positive and make up the logged loss.
        assert row['loss_cls'] > 0 and row['loss_distill'] > 0, row
        assert row['loss'] == pytest.approx(
            row['loss_cls'] + row['loss_distill'], rel=1e-3, abs=1e-3), row
    losses = [row['loss'] for row in rows]
    assert sum(losses[-3:]) < sum(losses[:3]), losses


@pytest.mark.slow
def test_checkpoint_holds_the_student_only(trained):
    root, config, work_dir = trained
    ckpt = osp.join(work_dir, f'epoch_{EPOCHS}.pth')
    state_dict = load_from_local(ckpt)['state_dict']
    assert all(
        key.split('.')[0] in ('backbone', 'neck', 'head', 'data_preprocessor')
        for key in state_dict)
    cfg = Config.fromfile(config)
    cfg.model.teacher = None
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        plain = MODELS.build(cfg.model)
    load_checkpoint(plain, ckpt, strict=True)


@pytest.mark.slow
def test_resume_and_test_without_the_teacher_file(trained):
    root, config, work_dir = trained
    assert run_main(
        'train.py',
        config,
        '--work-dir',
        work_dir,
        '--resume',
        '--cfg-options',
        f'train_cfg.max_epochs={EPOCHS + 1}',
        cwd=root) is None
    meta = load_from_local(osp.join(work_dir,
                                    f'epoch_{EPOCHS + 1}.pth'))['meta']
    # Continued, not restarted: one epoch (3 iterations) more.
    assert (meta['epoch'], meta['iter']) == (EPOCHS + 1, (EPOCHS + 1) * 3)

    # Testing never builds the teacher, so it does not need its file.
    os.remove(osp.join(root, TEACHER_FILE))
    test_dir = osp.join(root, 'test')
    assert run_main(
        'test.py',
        config,
        osp.join(work_dir, f'epoch_{EPOCHS + 1}.pth'),
        '--work-dir',
        test_dir,
        cwd=root) is None
    metrics, = glob.glob(osp.join(test_dir, '*', '*.json'))
    with open(metrics) as f:
        top1 = json.load(f)['accuracy/top1']
    # A percentage of the three test images.
    assert any(top1 == pytest.approx(100 * n / 3) for n in range(4)), top1


def test_teacher_of_other_classes_stops_before_training(tmp_path):
    root = str(tmp_path)
    data = make_imagenet(
        osp.join(root, 'imagenet'), per_class=dict(train=1, val=1), size=40)
    place_teacher(root, num_classes=5)
    work_dir = osp.join(root, 'work')
    error = run_main(
        'train.py', write_config(root, data), '--work-dir', work_dir, cwd=root)
    # tools/train.py exits with the message alone, no traceback.
    assert ': error: checkpoints/teacher.pth' in error.splitlines()[0]
    assert 'model.teacher.init_cfg.checkpoint' in error
    assert 'num_classes' in error
    assert not glob.glob(osp.join(work_dir, '*.pth'))
    assert not iteration_losses(work_dir)


def test_missing_teacher_file_is_named_before_anything_runs(
        tmp_path, monkeypatch):
    data = make_imagenet(str(tmp_path / 'imagenet'))
    config = write_config(str(tmp_path), data)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingResourceError) as error:
        train(config, work_dir=str(tmp_path / 'work'))
    message = str(error.value)
    assert f'{TEACHER_FILE} does not exist ' in message
    assert '(model.teacher.init_cfg.checkpoint)' in message
    assert 'regnety_160-a5fe301d.pth' in message
    assert 'timm_teacher_to_mmeformer.py' in message
    assert not (tmp_path / 'work').exists()
