"""AGCOptimWrapperConstructor: timm's adaptive clipping inside mmengine's
optimizer wrappers, built from a config."""
import copy

import pytest
import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import DefaultScope
from timm.utils import adaptive_clip_grad

import mmeformer  # noqa: F401
from mmeformer.models.layers import MetaBlock2d

AGC = dict(type='agc', clip_factor=0.01)


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(),
        nn.Linear(8 * 4 * 4, 5))


def loss_of(model):
    torch.manual_seed(1)
    # Large inputs give gradients far above 1% of the weights: most units
    # are clipped, some (small gradients) are not.
    return model(100 * torch.randn(4, 3, 6, 6)).square().mean()


def build(model, scope='mmpretrain', weight_decay=0., **kwargs):
    cfg = dict(
        constructor='mmeformer.AGCOptimWrapperConstructor',
        optimizer=dict(type='SGD', lr=1., weight_decay=weight_decay),
        **kwargs)
    with DefaultScope.overwrite_default_scope(scope):
        return build_optim_wrapper(model, cfg)


def test_clips_as_timm_does():
    model, reference = make_model(), make_model()
    optim_wrapper = build(model, clip_grad=dict(AGC))
    assert type(optim_wrapper) is OptimWrapper

    loss_of(reference).backward()
    unclipped = [p.grad.clone() for p in reference.parameters()]
    adaptive_clip_grad(reference.parameters(), clip_factor=0.01)
    clipped = [p.grad for p in reference.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(unclipped, clipped))
    expected = [(p - g).detach()
                for p, g in zip(reference.parameters(), clipped)]

    optim_wrapper.update_params(loss_of(model))
    for param, value in zip(model.parameters(), expected):
        torch.testing.assert_close(param.detach(), value)


def test_other_settings_reach_timm():
    model, reference = make_model(), make_model()
    kwargs = dict(clip_factor=0.05, eps=1e-2, norm_type=1.0)
    optim_wrapper = build(model, clip_grad=dict(type='agc', **kwargs))
    assert optim_wrapper.clip_grad_kwargs == kwargs
    loss_of(reference).backward()
    adaptive_clip_grad(reference.parameters(), **kwargs)
    optim_wrapper.update_params(loss_of(model))
    for param, ref in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(param.detach(), (ref - ref.grad).detach())


def test_paramwise_cfg_and_other_clip_types_still_work():
    model = make_model()
    optim_wrapper = build(
        model,
        weight_decay=0.1,
        clip_grad=dict(max_norm=1.),
        paramwise_cfg=dict(bias_decay_mult=0.))
    assert optim_wrapper.clip_func is torch.nn.utils.clip_grad_norm_
    assert optim_wrapper.optimizer.param_groups[1]['weight_decay'] == 0.
    assert build(make_model()).clip_grad_kwargs is None


@pytest.mark.parametrize('clip_grad, match', [
    (dict(type='agc'), 'clip_factor is missing'),
    (dict(type='agc', clip_factor=0.01, max_norm=1.), 'max_norm'),
])
def test_bad_settings_are_named(clip_grad, match):
    with pytest.raises(ValueError, match=match) as error:
        build(make_model(), clip_grad=copy.deepcopy(clip_grad))
    assert 'optim_wrapper.clip_grad' in str(error.value)


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmdet', 'mmseg'])
def test_resolves_from_every_host(scope):
    assert build(
        make_model(), scope,
        clip_grad=dict(AGC)).clip_func is (adaptive_clip_grad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='AMP needs CUDA')
def test_clips_the_unscaled_gradients_under_amp():
    """AmpOptimWrapper, as ``tools/train.py --amp`` makes it: the gradients
    are unscaled before AGC compares them with the weights."""
    model, reference = make_model().cuda(), make_model().cuda()
    optim_wrapper = build(
        model, type='AmpOptimWrapper', loss_scale=64., clip_grad=dict(AGC))
    assert optim_wrapper.clip_func is adaptive_clip_grad
    torch.manual_seed(1)
    inputs = torch.randn(4, 3, 6, 6, device='cuda')
    reference(inputs).square().mean().backward()
    unclipped = [p.grad.clone() for p in reference.parameters()]
    adaptive_clip_grad(reference.parameters(), clip_factor=0.01)
    assert any(not torch.equal(a, p.grad)
               for a, p in zip(unclipped, reference.parameters()))
    expected = [(p - p.grad).detach() for p in reference.parameters()]
    with optim_wrapper.optim_context(model):
        loss = model(inputs).square().mean()
    optim_wrapper.update_params(loss)
    for param, value in zip(model.parameters(), expected):
        torch.testing.assert_close(param.detach(), value, rtol=1e-2, atol=1e-3)


LAYER_SCALES = ['.ls1.weight', '.ls2.weight']


def make_v2_block():
    """A V2 block with flat ``(C,)`` layer scales of different sizes."""
    torch.manual_seed(0)
    model = nn.Sequential(
        MetaBlock2d(8, token_mixer=nn.Conv2d(8, 8, 1), mid_conv=True))
    with torch.no_grad():
        for scale in (model[0].ls1, model[0].ls2):
            scale.weight.copy_(0.05 + 0.5 * torch.rand(8))
    return model


def official_layout(model):
    """A copy of ``model`` with the layer scales as the official V2 stores
    them: ``(C, 1, 1)`` tensors (LayerScale views them so either way)."""
    reference = copy.deepcopy(model)
    for scale in (reference[0].ls1, reference[0].ls2):
        scale.weight = nn.Parameter(scale.weight.detach().view(-1, 1, 1))
    return reference


def block_loss(model):
    torch.manual_seed(1)
    return model(0.3 * torch.randn(2, 8, 5, 5)).square().mean()


def step_v2_block(model, **clip_grad):
    optim_wrapper = build(model, clip_grad=dict(AGC, **clip_grad))
    optim_wrapper.update_params(block_loss(model))
    return [p.detach().flatten() for p in model.parameters()]


def test_elementwise_keys_clip_as_timm_on_the_official_layout():
    """timm on (C, 1, 1) layer scales clips each channel; the same
    parameters stored flat are clipped channel by channel only when named
    in ``elementwise_keys``, and as one vector otherwise."""
    model = make_v2_block()
    reference = official_layout(model)
    block_loss(reference).backward()
    unclipped = reference[0].ls1.weight.grad.clone()
    adaptive_clip_grad(reference.parameters(), clip_factor=0.01)
    # Some channels are clipped, some are not.
    changed = reference[0].ls1.weight.grad != unclipped
    assert changed.any() and not changed.all()
    expected = [(p - p.grad).detach().flatten()
                for p in reference.parameters()]

    per_element = step_v2_block(model, elementwise_keys=LAYER_SCALES)
    for name, param, value in zip(
            dict(reference.named_parameters()), per_element, expected):
        torch.testing.assert_close(param, value, msg=name)

    as_vectors = step_v2_block(make_v2_block())
    differ = [
        name for name, param, value in zip(
            dict(reference.named_parameters()), as_vectors, expected)
        if not torch.allclose(param, value)
    ]
    assert differ == ['0.ls1.weight', '0.ls2.weight']


def test_elementwise_keys_are_checked():
    with pytest.raises(ValueError, match=r"\['\.ls3\.weight'\] match no"):
        build(
            make_v2_block(),
            clip_grad=dict(
                AGC, elementwise_keys=['.ls1.weight', '.ls3.weight']))
    with pytest.raises(ValueError, match='list of non-empty'):
        build(
            make_v2_block(),
            clip_grad=dict(AGC, elementwise_keys='.ls1.weight'))
