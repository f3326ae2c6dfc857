"""DistillationImageClassifier: the official loss, a frozen teacher kept out
of the student's state, and clear errors for settings that cannot work."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.model import convert_sync_batchnorm
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmeformer.models.classifiers import (DistillationImageClassifier,
                                          distillation_loss)
from mmeformer.runtime import MissingResourceError, SetupError

NUM_CLASSES = 5
#: A small timm network, random weights: the teacher of these tests.
TEACHER = dict(
    type='TimmClassifier', model_name='test_byobnet', num_classes=NUM_CLASSES)


def student_cfg(tiny_archs, **kwargs):
    return dict(
        type='mmeformer.DistillationImageClassifier',
        backbone=dict(
            type='mmeformer.EfficientFormerV2',
            arch=tiny_archs['EfficientFormerV2'],
            final_norm=True,
            attn_ref_size=32),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='mmeformer.EfficientFormerClsHead',
            num_classes=NUM_CLASSES,
            in_channels=32,
            loss=dict(
                type='LabelSmoothLoss', label_smooth_val=0.1,
                mode='original')),
        **kwargs)


@pytest.fixture
def build(tiny_archs):
    """Build a classifier in MMPretrain's scope, as its configs do."""

    def build(**kwargs):
        torch.manual_seed(0)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            model = MODELS.build(student_cfg(tiny_archs, **kwargs))
            model.init_weights()
        return model

    return build


def mixed_batch(lam=0.7):
    """Inputs and Mixup-style soft labels: lam * y + (1 - lam) * y[::-1]."""
    torch.manual_seed(1)
    inputs = torch.randn(4, 3, 32, 32)
    labels = torch.tensor([0, 3, 1, 4])
    one_hot = F.one_hot(labels, NUM_CLASSES).float()
    scores = lam * one_hot + (1 - lam) * one_hot.flip(0)
    return inputs, [DataSample().set_gt_score(s) for s in scores], labels


def official_soft_target_ce(logits, labels, lam=0.7, smoothing=0.1):
    """timm's mixup_target (smoothed one-hots, mixed) and
    SoftTargetCrossEntropy, the official base criterion with Mixup."""
    off = smoothing / NUM_CLASSES
    smooth = F.one_hot(labels, NUM_CLASSES).float() * (1 - smoothing) + off
    target = lam * smooth + (1 - lam) * smooth.flip(0)
    return torch.sum(-target * F.log_softmax(logits, dim=-1), dim=-1).mean()


def test_distillation_terms_on_fixed_tensors():
    student = torch.tensor([[2., 0., -1.], [0.5, 1.5, 0.], [0., 0., 3.]])
    teacher = torch.tensor([[0., 4., 1.], [1., 0., 0.], [0., 2., 5.]])
    # Hard: cross entropy against the teacher's top-1 classes 1, 0, 2.
    hard = -(F.log_softmax(student, 1)[[0, 1, 2], [1, 0, 2]]).mean()
    torch.testing.assert_close(
        distillation_loss(student, teacher, 'hard'), hard)
    # Soft: sum of KL(teacher || student) at temperature tau, * tau^2 / numel.
    tau = 2.
    p_t = F.softmax(teacher / tau, 1)
    kl = (p_t * (p_t.log() - F.log_softmax(student / tau, 1))).sum()
    torch.testing.assert_close(
        distillation_loss(student, teacher, 'soft', tau),
        kl * tau**2 / student.numel())


@pytest.mark.parametrize('distillation_type, tau', [('hard', 1.),
                                                    ('soft', 3.)])
def test_loss_is_the_official_formula(build, distillation_type, tau):
    model = build(
        teacher=TEACHER,
        distillation_type=distillation_type,
        distillation_alpha=0.3,
        distillation_tau=tau)
    model.train()
    inputs, samples, labels = mixed_batch()
    losses = model.loss(inputs, samples)
    assert set(losses) == {'loss_cls', 'loss_distill'}

    # The two classifiers' logits, each from its own layer: a swap of
    # head and dist_head anywhere in the model changes the loss.
    feature = model.extract_feat(inputs)[-1]
    cls, dist = model.head.head(feature), model.head.dist_head(feature)
    assert not torch.allclose(cls, dist, atol=1e-3)
    teacher = model.teacher.model(inputs)
    if distillation_type == 'hard':
        distill = F.cross_entropy(dist, teacher.argmax(dim=1))
    else:
        distill = F.kl_div(
            F.log_softmax(dist / tau, dim=1),
            F.log_softmax(teacher / tau, dim=1),
            reduction='sum',
            log_target=True) * (tau * tau) / dist.numel()
    expected = 0.7 * official_soft_target_ce(cls, labels) + 0.3 * distill
    total, _ = model.parse_losses(losses)
    torch.testing.assert_close(total, expected)


def test_teacher_is_frozen_in_eval_mode_and_outside_the_student(build):
    model = build(teacher=TEACHER)
    teacher = model.teacher
    model.train()
    assert not any(m.training for m in teacher.modules())
    assert all(not p.requires_grad for p in teacher.parameters())
    student_params = {id(p) for p in model.parameters()}
    assert not any(id(p) in student_params for p in teacher.parameters())
    assert teacher not in list(model.modules())

    inputs, samples, _ = mixed_batch()
    running_mean = [
        m.running_mean.clone() for m in teacher.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    ]
    total, _ = model.parse_losses(model.loss(inputs, samples))
    total.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert model.head.dist_head.weight.grad.abs().sum() > 0
    after = [
        m.running_mean for m in teacher.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    ]
    assert all(torch.equal(a, b) for a, b in zip(running_mean, after))


def test_syncbn_conversion_leaves_the_teacher_alone(tiny_archs):
    """The Runner converts (and wraps) the student before ``init_weights``
    builds the teacher; converting later does not reach it either."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(student_cfg(tiny_archs, teacher=TEACHER))
    model = convert_sync_batchnorm(model)
    model.init_weights()
    model = convert_sync_batchnorm(model)
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    teacher_norms = [
        type(m) for m in model.teacher.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]
    assert teacher_norms and torch.nn.SyncBatchNorm not in teacher_norms


def test_the_checkpoint_loads_strictly_without_teacher(build, tiny_archs):
    model = build(teacher=TEACHER)
    state_dict = model.state_dict()
    assert not any('teacher' in key or key.startswith('model.')
                   for key in state_dict)
    plain = build(teacher=None)
    plain.load_state_dict(state_dict, strict=True)
    cfg = student_cfg(tiny_archs)
    cfg.update(type='ImageClassifier')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        image_classifier = MODELS.build(cfg)
    image_classifier.load_state_dict(state_dict, strict=True)
    inputs = torch.randn(2, 3, 32, 32)
    model.eval()
    image_classifier.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(inputs), image_classifier(inputs))


def test_teacher_is_built_by_init_weights_only(tiny_archs):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(student_cfg(tiny_archs, teacher=TEACHER))
    assert model.teacher is None, 'built before training started'
    model.eval()
    with torch.no_grad():
        model.predict(torch.randn(1, 3, 32, 32))
    assert model.teacher is None, 'inference built the teacher'
    # The teacher is an MMPretrain model whatever scope is current.
    with DefaultScope.overwrite_default_scope('mmseg'):
        model.init_weights()
    assert model.teacher is not None


def test_without_teacher_it_is_the_head_loss(build):
    model = build()
    inputs, samples, _ = mixed_batch()
    feats = model.extract_feat(inputs)
    torch.testing.assert_close(
        model.loss(inputs, samples)['loss'],
        model.head.loss(feats, samples)['loss'])
    assert model.teacher is None


def test_teacher_checkpoint_is_loaded_strictly(build, tmp_path):
    # The file's weights differ from those a teacher starts with (``build``
    # seeds alike): only a teacher that read the file holds them.
    fresh = build(teacher=TEACHER).teacher.state_dict()
    generator = torch.Generator().manual_seed(2)
    saved = {
        k: (v + torch.randn(v.shape, generator=generator)
            if v.is_floating_point() else v + 1)
        for k, v in fresh.items()
    }
    path = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': saved}, path)
    pretrained = dict(
        TEACHER, init_cfg=dict(type='Pretrained', checkpoint=path))
    loaded = build(teacher=pretrained).teacher.state_dict()
    assert list(loaded) == list(saved)
    for key, value in saved.items():
        assert not torch.equal(value, fresh[key]), key
        assert torch.equal(loaded[key], value), key

    # A teacher of 7 classes: the head's shapes do not fit 5.
    other = build(teacher=dict(TEACHER, num_classes=7)).teacher
    torch.save({'state_dict': other.state_dict()}, path)
    with pytest.raises(SetupError) as error:
        build(teacher=pretrained)
    message = str(error.value)
    assert 'model.teacher.init_cfg.checkpoint' in message
    assert 'num_classes' in message and 'size mismatch' in message


def test_missing_teacher_checkpoint_names_key_and_tool(build, tmp_path):
    path = str(tmp_path / 'regnety_160_deit_in1k.pth')
    with pytest.raises(MissingResourceError) as error:
        build(
            teacher=dict(
                TEACHER, init_cfg=dict(type='Pretrained', checkpoint=path)))
    message = str(error.value)
    assert f'{path} does not exist (model.teacher.init_cfg.checkpoint)' in (
        message)
    assert 'timm_teacher_to_mmeformer.py' in message
    assert 'model.teacher=None' in message


def test_teacher_with_other_classes_stops_the_first_step(build):
    model = build(teacher=dict(TEACHER, num_classes=7))
    inputs, samples, _ = mixed_batch()
    with pytest.raises(SetupError, match='model.teacher predicts 7 classes'):
        model.loss(inputs, samples)


@pytest.mark.parametrize('kwargs, match', [
    (dict(distillation_type='medium'), 'model.distillation_type'),
    (dict(distillation_alpha=1.5), 'model.distillation_alpha'),
    (dict(distillation_tau=0.), 'model.distillation_tau'),
])
def test_bad_settings_are_named(build, kwargs, match):
    with pytest.raises(SetupError, match=match):
        build(teacher=TEACHER, **kwargs)


def test_teacher_needs_a_distillation_head(tiny_archs):
    cfg = student_cfg(tiny_archs, teacher=TEACHER)
    cfg['head']['distillation'] = False
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        with pytest.raises(SetupError, match='distillation=True'):
            MODELS.build(cfg)


def test_registered_in_mmeformer():
    from mmeformer.registry import MODELS as OURS
    assert OURS.get('DistillationImageClassifier') is (
        DistillationImageClassifier)
