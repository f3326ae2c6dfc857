"""What only EfficientFormerV2 has; the shared behaviour is tested in
test_backbone_common.py."""
import pytest
import torch

from mmeformer.models import EfficientFormerV2
from mmeformer.models.backbones.efficientformer_v2 import (
    Attention4D, Attention4DDownsample, LocalGlobalQuery)


@pytest.mark.parametrize('arch, num_attn', [('s0', 2), ('s1', 2), ('s2', 4),
                                            ('l', 6)])
def test_attention_placement(arch, num_attn):
    with torch.device('meta'):
        model = EfficientFormerV2(arch)
    for i, stage in enumerate(model.stages):
        mixers = [type(b.token_mixer) for b in stage.blocks]
        n = len(mixers) if i < 2 else len(mixers) - num_attn
        assert mixers[:n] == [type(None)] * n
        assert mixers[n:] == [Attention4D] * (len(mixers) - n)
    assert model.stages[2].blocks[-1].token_mixer.stride_conv is not None
    assert model.stages[3].blocks[-1].token_mixer.stride_conv is None
    assert isinstance(model.stages[3].downsample.attn, Attention4DDownsample)
    assert model.stages[2].downsample.attn is None
    ratios = [
        b.mlp.fc1.conv.out_channels // c
        for stage, c in zip(model.stages, model.channels) for b in stage.blocks
    ]
    expected = [
        r for s in EfficientFormerV2.arch_zoo[arch]['mlp_ratios'] for r in s
    ]
    assert ratios == expected


@pytest.mark.parametrize('size', [(14, 14), (17, 21), (33, 42)])
def test_strided_attention_returns_the_input_size(size):
    attn = Attention4D(24, ref_grid=(14, 14), stride=2).eval()
    with torch.no_grad():
        assert attn(torch.rand(1, 24, *size)).shape == (1, 24, *size)


@pytest.mark.parametrize('size', [(14, 14), (17, 21), (33, 42)])
def test_downsample_branches_agree_on_odd_sizes(size):
    query = LocalGlobalQuery(24, 128)
    half = tuple(-(-s // 2) for s in size)
    assert query(torch.rand(1, 24, *size)).shape == (1, 128, *half)
    attn = Attention4DDownsample(24, 40, ref_grid=(14, 14)).eval()
    with torch.no_grad():
        assert attn(torch.rand(1, 24, *size)).shape == (1, 40, *half)
