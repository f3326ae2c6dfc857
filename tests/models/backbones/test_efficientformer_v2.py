import pytest
import torch
import torch.nn as nn

from mmeformer.models import EfficientFormerV2
from mmeformer.models.backbones.efficientformer_v2 import (
    Attention4D, Attention4DDownsample, LocalGlobalQuery)

SIZES = [(224, 224), (512, 512), (800, 1216), (513, 671)]
CHANNELS = {
    's0': [32, 48, 96, 176],
    's1': [32, 48, 120, 224],
    's2': [32, 64, 144, 288],
    'l': [40, 80, 192, 384],
}


def expected_shapes(arch, size):
    return [(1, c, -(-size[0] // 2**(i + 2)), -(-size[1] // 2**(i + 2)))
            for i, c in enumerate(CHANNELS[arch])]


@pytest.fixture(scope='module', params=['s0', 's1', 's2', 'l'])
def meta_model(request):
    """The full model on the meta device: the real forward code runs, shapes
    are checked by every op, but no arithmetic is done."""
    with torch.device('meta'):
        model = EfficientFormerV2(request.param, out_indices=(0, 1, 2, 3))
    return request.param, model.eval()


@pytest.mark.parametrize('size', SIZES, ids=lambda s: f'{s[0]}x{s[1]}')
def test_output_shapes(meta_model, size):
    arch, model = meta_model
    with torch.no_grad():
        outs = model(torch.empty(1, 3, *size, device='meta'))
    assert [tuple(o.shape) for o in outs] == expected_shapes(arch, size)


@pytest.mark.parametrize('arch, size',
                         [(arch, (224, 224))
                          for arch in CHANNELS] + [('s0', size)
                                                   for size in SIZES[1:]])
def test_forward_computes_finite_maps(arch, size):
    model = EfficientFormerV2(arch, out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, *size))
    assert [tuple(o.shape) for o in outs] == expected_shapes(arch, size)
    assert all(torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize('arch, params', [('s0', 3_600_256), ('s1', 6_185_560),
                                          ('s2', 12_710_112),
                                          ('l', 26_322_288)])
def test_classifier_parameter_count(build_classifier, arch, params):
    model = build_classifier('EfficientFormerV2', arch)
    assert sum(p.numel() for p in model.parameters()) == params
    assert isinstance(model.backbone.norm, nn.BatchNorm2d)


@pytest.mark.parametrize('arch, num_attn', [('s0', 2), ('s1', 2), ('s2', 4),
                                            ('l', 6)])
def test_attention_placement(arch, num_attn):
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


@pytest.mark.parametrize('ref_size, entries', [(224, (49, 196, 49)),
                                               (800, (625, 2500, 625)),
                                               (512, (256, 1024, 256))])
def test_bias_tables_follow_the_reference_size(ref_size, entries):
    model = EfficientFormerV2('s0', attn_ref_size=ref_size)
    tables = [
        model.stages[2].blocks[-1].token_mixer.attn_bias.table,
        model.stages[3].downsample.attn.attn_bias.table,
        model.stages[3].blocks[-1].token_mixer.attn_bias.table,
    ]
    assert [t.shape for t in tables] == [(8, n) for n in entries]


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
