"""Shared fixtures of the model tests."""
import copy

import pytest
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
    """:func:`mmeformer.testing.randomize_weights`: every branch of a model
    visibly contributes to its output."""
    from mmeformer.testing import randomize_weights
    return randomize_weights
