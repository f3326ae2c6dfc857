"""The blocks of ``mmeformer.models.layers.blocks``."""
import math

import pytest
import torch
import torch.nn as nn

from mmeformer.models.layers import (ConvMlp, Downsample, LinearMlp,
                                     MetaBlock2d, Stem)


@pytest.mark.parametrize('size, expected', [((224, 224), (56, 56)),
                                            ((513, 671), (129, 168))])
def test_stem_has_stride_4_with_ceil_rounding(size, expected):
    stem = Stem(3, 16, act_cfg=dict(type='ReLU'))
    assert stem(torch.rand(1, 3, *size)).shape == (1, 16, *expected)


def test_downsample_adds_the_attention_branch():

    class Constant(nn.Module):

        def forward(self, x):
            return torch.ones(x.shape[0], 4, (x.shape[2] + 1) // 2,
                              (x.shape[3] + 1) // 2)

    plain = Downsample(2, 4).eval()
    with_attn = Downsample(2, 4, attn=Constant()).eval()
    with_attn.conv.load_state_dict(plain.conv.state_dict())
    x = torch.rand(1, 2, 7, 9)
    with torch.no_grad():
        torch.testing.assert_close(with_attn(x), plain(x) + 1)
    assert plain(x).shape == (1, 4, 4, 5)


def test_conv_mlp_mid_unit_is_depthwise():
    assert ConvMlp(8, 32).mid is None
    mlp = ConvMlp(8, 32, mid_conv=True)
    assert mlp.mid.conv.groups == 32 and mlp.mid.conv.kernel_size == (3, 3)
    assert mlp(torch.rand(1, 8, 5, 7)).shape == (1, 8, 5, 7)
    assert LinearMlp(8, 32)(torch.rand(2, 10, 8)).shape == (2, 10, 8)


def test_meta_block_without_mixer_is_ffn_only():
    block = MetaBlock2d(8, mlp_ratio=3, mid_conv=True)
    assert block.token_mixer is None and block.ls1 is None
    assert block.mlp.fc1.conv.out_channels == 24
    with_mixer = MetaBlock2d(8, token_mixer=nn.Identity())
    assert with_mixer.ls1.weight.shape == (8, )
    assert torch.all(with_mixer.ls2.weight == 1e-5)


def test_meta_block_layer_scales_are_per_channel_on_nchw_maps():
    block = MetaBlock2d(4, token_mixer=nn.Identity())
    weight = torch.arange(1., 5.)
    block.ls1.weight.data.copy_(weight)
    assert torch.equal(block.ls1(torch.ones(2, 4, 3, 5))[0, :, 1, 2], weight)


@pytest.mark.parametrize('mid_conv', [False, True])
def test_1x1_convs_start_from_a_truncated_normal(mid_conv):
    torch.manual_seed(0)
    mlp = ConvMlp(96, 384, mid_conv=mid_conv)
    for unit in (mlp.fc1, mlp.fc2):
        weight = unit.conv.weight
        assert abs(weight.std().item() - 0.02) < 0.001
        assert weight.abs().max() < 0.2  # no tail beyond a few std
        assert not unit.conv.bias.any()
    if mid_conv:
        # PyTorch's default, as the official `mid` (created after its init):
        # uniform within 1/sqrt(fan_in), with a uniform bias as well.
        conv = mlp.mid.conv
        bound = 1 / math.sqrt(9)
        assert conv.weight.abs().max() <= bound
        assert abs(conv.weight.std().item() - bound / math.sqrt(3)) < 0.01
        assert conv.bias.any()
