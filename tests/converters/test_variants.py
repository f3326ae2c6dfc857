import pytest
import torch

from mmeformer.converters import ConversionError, all_variants, parse_variant
from mmeformer.converters.variants import Variant, detect_variant
from mmeformer.models import EfficientFormer, EfficientFormerV2


def widths_only(channels, use_scales=False):
    """Just the tensors the widths are read from."""
    tensors = {}
    for stage, width in enumerate(channels):
        if use_scales:
            name = f'backbone.stages.{stage}.blocks.0.ls2.weight'
            tensors[name] = torch.zeros(width)
        elif stage == 0:
            tensors['backbone.stem.conv2.conv.weight'] = torch.zeros(
                width, 1, 1, 1)
        else:
            name = f'backbone.stages.{stage}.downsample.conv.conv.weight'
            tensors[name] = torch.zeros(width, 1, 1, 1)
    return tensors


def test_every_arch_zoo_entry_is_known():
    assert [
        v.name for v in all_variants()
    ] == [f'efficientformer_{a}' for a in EfficientFormer.arch_zoo
          ] + [f'efficientformerv2_{a}' for a in EfficientFormerV2.arch_zoo]


@pytest.mark.parametrize('name,expected', [
    ('l1', Variant('v1', 'l1')),
    ('EfficientFormer_L7', Variant('v1', 'l7')),
    ('efficientformerv2-s0', Variant('v2', 's0')),
    ('L', Variant('v2', 'l')),
])
def test_parse_variant(name, expected):
    assert parse_variant(name) == expected


def test_parse_unknown_variant_lists_known_ones():
    with pytest.raises(ConversionError, match=r'l1 \(efficientformer_l1\)'):
        parse_variant('b0')


@pytest.mark.parametrize('variant', all_variants(), ids=str)
@pytest.mark.parametrize('use_scales', [False, True])
def test_detect(variant, use_scales):
    tensors = widths_only(variant.channels, use_scales)
    assert detect_variant(tensors, variant.family) == variant
    assert detect_variant(tensors, variant.family, variant) == variant


def test_detect_refuses_unknown_widths_and_wrong_names():
    tensors = widths_only([48, 96, 224, 512])
    with pytest.raises(ConversionError, match='match no EfficientFormer'):
        detect_variant(tensors, 'v1')
    tensors = widths_only([48, 96, 224, 448])
    with pytest.raises(ConversionError, match='has \\[64, 128, 320, 512\\]'):
        detect_variant(tensors, 'v1', Variant('v1', 'l3'))
    del tensors['backbone.stages.2.downsample.conv.conv.weight']
    with pytest.raises(ConversionError, match=r'stage\(s\) \[2\]'):
        detect_variant(tensors, 'v1')
