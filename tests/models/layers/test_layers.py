import pytest
import torch
import torch.nn as nn

from mmeformer.models.layers import (ConvMlp, Downsample, LayerNorm2d,
                                     LayerScale, LinearMlp, MetaBlock2d, Stem)


def test_layer_scale_broadcasts_over_the_channel_axis():
    weight = torch.arange(1., 5.)
    first = LayerScale(4, data_format='channels_first')
    last = LayerScale(4, data_format='channels_last')
    first.weight.data.copy_(weight)
    last.weight.data.copy_(weight)
    x = torch.ones(2, 4, 3, 5)
    assert torch.equal(first(x)[0, :, 1, 2], weight)
    assert torch.equal(last(x.permute(0, 2, 3, 1))[0, 1, 2], weight)
    assert first.weight.shape == (4, )
    with pytest.raises(ValueError, match='data_format'):
        LayerScale(4, data_format='nchw')


def test_layer_norm_2d_equals_token_layer_norm():
    norm = LayerNorm2d(6)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    x = torch.randn(2, 6, 3, 4)
    tokens = x.flatten(2).transpose(1, 2)
    expected = nn.functional.layer_norm(tokens, (6, ), norm.weight, norm.bias,
                                        norm.eps)
    torch.testing.assert_close(norm(x).flatten(2).transpose(1, 2), expected)


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
