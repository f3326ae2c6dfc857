"""The backbones start from the official initialisation: PyTorch's default
for every convolution but the MLPs' 1x1s, a truncated normal for those."""
import math
import re

import pytest
import torch
import torch.nn as nn

from mmeformer.models import EfficientFormer, EfficientFormerV2

#: Convolutions the official code initialises itself (``Mlp._init_weights``).
MLP_1X1 = re.compile(r'\.mlp\.fc[12]\.conv$')

#: One convolution of each kind the official code leaves at PyTorch's
#: default, by the end of its name.
DEFAULT_INIT_KINDS = {
    EfficientFormer:
    ['stem.conv1.conv', 'stem.conv2.conv', 'downsample.conv.conv'],
    EfficientFormerV2: [
        'stem.conv1.conv', 'downsample.conv.conv', 'mlp.mid.conv',
        'token_mixer.stride_conv.conv', 'token_mixer.q.conv',
        'token_mixer.k.conv', 'token_mixer.v.conv', 'token_mixer.v_local.conv',
        'token_mixer.proj.conv', 'token_mixer.talking_head1', 'attn.q.local',
        'attn.q.proj.conv', 'attn.k.conv', 'attn.v_local.conv',
        'attn.proj.conv'
    ],
}

#: L1 and S0 widths, one block of each kind per stage.
ARCHS = {
    EfficientFormer:
    dict(depths=[1, 1, 1, 2], channels=[48, 96, 224, 448], num_attn_blocks=1),
    EfficientFormerV2:
    dict(
        depths=[1, 1, 2, 2],
        channels=[32, 48, 96, 176],
        num_attn_blocks=1,
        mlp_ratios=[[4], [4], [4, 3], [3, 4]]),
}


@pytest.mark.parametrize('backbone_cls', [EfficientFormer, EfficientFormerV2])
def test_convolutions_start_as_in_the_official_code(backbone_cls):
    torch.manual_seed(0)
    backbone = backbone_cls(ARCHS[backbone_cls])
    backbone.init_weights()  # what the runners call
    seen = set()
    for name, conv in backbone.named_modules():
        if not isinstance(conv, nn.Conv2d):
            continue
        weight, bias = conv.weight.detach(), conv.bias.detach()
        if MLP_1X1.search(name):
            assert not bias.any(), name
            if weight.numel() >= 4096:
                assert abs(weight.std().item() - 0.02) < 0.002, name
            continue
        seen.update(kind for kind in DEFAULT_INIT_KINDS[backbone_cls]
                    if name.endswith(kind))
        # kaiming_uniform_(a=sqrt(5)): uniform within 1 / sqrt(fan_in),
        # and a uniform bias within the same bound. ConvModule's
        # Kaiming-normal (std sqrt(2 / fan_out), zero bias) exceeds it.
        fan_in = weight[0].numel()
        bound = 1 / math.sqrt(fan_in)
        assert weight.abs().max() <= bound, name
        assert bias.abs().max() <= bound and bias.any(), name
        if weight.numel() >= 4096:
            ratio = weight.std().item() / (bound / math.sqrt(3))
            assert abs(ratio - 1) < 0.05, (name, ratio)
    assert seen == set(DEFAULT_INIT_KINDS[backbone_cls])
