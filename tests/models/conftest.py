"""Shared fixtures of the model tests."""
import copy

import pytest
import torch
from mmengine.registry import DefaultScope

#: Small architectures for behaviour tests: every block kind, few channels.
TINY_ARCHS = {
    'EfficientFormer':
    dict(depths=[1, 1, 2, 2], channels=[8, 16, 24, 32], num_attn_blocks=1),
    'EfficientFormerV2':
    dict(
        depths=[1, 1, 2, 2],
        channels=[8, 16, 24, 32],
        num_attn_blocks=1,
        mlp_ratios=[[4], [4], [4, 3], [3, 4]]),
}


@pytest.fixture
def tiny_archs():
    """A fresh copy of ``TINY_ARCHS``."""
    return copy.deepcopy(TINY_ARCHS)


@pytest.fixture
def build_classifier():
    """Build an mmpretrain ImageClassifier around one of our backbones."""

    def build(backbone_type, arch, num_classes=1000, **backbone_kwargs):
        from mmpretrain.registry import MODELS
        backbone_cls = MODELS.get(f'mmeformer.{backbone_type}')
        channels = backbone_cls.parse_arch(arch)['channels'][-1]
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            return MODELS.build(
                dict(
                    type='ImageClassifier',
                    backbone=dict(
                        type=f'mmeformer.{backbone_type}',
                        arch=arch,
                        final_norm=True,
                        **backbone_kwargs),
                    neck=dict(type='GlobalAveragePooling'),
                    head=dict(
                        type='mmeformer.EfficientFormerClsHead',
                        num_classes=num_classes,
                        in_channels=channels)))

    return build


@pytest.fixture(scope='session')
def randomize():
    """Make every branch of a model visibly contribute to its output.

    BatchNorms get non-trivial affine parameters and running statistics,
    layer scales values of order 0.1-0.5 and attention bias tables random
    values, instead of the identity-like initial values. The names of timm's
    models (``ls1.gamma``, ``attention_biases``) are understood too.
    """

    def apply(model, seed=0):
        generator = torch.Generator().manual_seed(seed)

        def rand(*shape):
            return torch.rand(*shape, generator=generator)

        def randn(*shape):
            return torch.randn(*shape, generator=generator)

        layer_scales = ('ls1.weight', 'ls2.weight', 'ls1.gamma', 'ls2.gamma')
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    n = module.num_features
                    module.weight.copy_(1 + 0.2 * randn(n))
                    module.bias.copy_(0.1 * randn(n))
                    module.running_mean.copy_(0.1 * randn(n))
                    module.running_var.copy_(0.5 + rand(n))
            for name, param in model.named_parameters():
                if name.endswith(layer_scales):
                    param.copy_(0.1 + 0.4 * rand(*param.shape))
                elif name.endswith(('attn_bias.table', 'attention_biases')):
                    param.copy_(randn(*param.shape))
        return model

    return apply
