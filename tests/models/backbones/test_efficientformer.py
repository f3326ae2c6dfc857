import pytest
import torch
import torch.nn as nn

from mmeformer.models import EfficientFormer
from mmeformer.models.backbones.efficientformer import Meta3DBlock
from mmeformer.models.layers import MetaBlock2d

SIZES = [(224, 224), (512, 512), (800, 1216), (513, 671)]
CHANNELS = {
    'l1': [48, 96, 224, 448],
    'l3': [64, 128, 320, 512],
    'l7': [96, 192, 384, 768],
}


def expected_shapes(arch, size):
    return [(1, c, -(-size[0] // 2**(i + 2)), -(-size[1] // 2**(i + 2)))
            for i, c in enumerate(CHANNELS[arch])]


@pytest.fixture(scope='module', params=['l1', 'l3', 'l7'])
def meta_model(request):
    """The full model on the meta device: the real forward code runs, shapes
    are checked by every op, but no arithmetic is done."""
    with torch.device('meta'):
        model = EfficientFormer(request.param, out_indices=(0, 1, 2, 3))
    return request.param, model.eval()


@pytest.mark.parametrize('size', SIZES, ids=lambda s: f'{s[0]}x{s[1]}')
def test_output_shapes(meta_model, size):
    arch, model = meta_model
    with torch.no_grad():
        outs = model(torch.empty(1, 3, *size, device='meta'))
    assert [tuple(o.shape) for o in outs] == expected_shapes(arch, size)


@pytest.mark.parametrize('arch, size',
                         [(arch, (224, 224))
                          for arch in CHANNELS] + [('l1', size)
                                                   for size in SIZES[1:]])
def test_forward_computes_finite_maps(arch, size):
    model = EfficientFormer(arch, out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, *size))
    assert [tuple(o.shape) for o in outs] == expected_shapes(arch, size)
    assert all(torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize('arch, params',
                         [('l1', 12_289_928), ('l3', 31_406_000),
                          ('l7', 82_229_328)])
def test_classifier_parameter_count(build_classifier, arch, params):
    model = build_classifier('EfficientFormer', arch)
    assert sum(p.numel() for p in model.parameters()) == params
    assert isinstance(model.backbone.norm, nn.LayerNorm)


@pytest.mark.parametrize('arch, num_attn', [('l1', 1), ('l3', 4), ('l7', 8)])
def test_attention_blocks_end_the_last_stage(arch, num_attn):
    model = EfficientFormer(arch)
    kinds = [[type(b) for b in stage.blocks] for stage in model.stages]
    for stage in kinds[:3]:
        assert set(stage) == {MetaBlock2d}
    depth = len(kinds[3])
    assert kinds[3] == [MetaBlock2d] * (depth - num_attn) + [Meta3DBlock
                                                             ] * num_attn
    assert model.stages[0].downsample is None
    assert model.stem.conv1.activate.__class__ is nn.ReLU


@pytest.mark.parametrize('ref_size, entries', [(224, 49), (800, 625),
                                               (512, 256)])
def test_bias_table_follows_the_reference_size(ref_size, entries):
    model = EfficientFormer('l1', attn_ref_size=ref_size)
    attn = model.stages[3].blocks[-1].token_mixer
    assert attn.attn_bias.table.shape == (8, entries)
    assert attn.qkv.out_features == 1536 and attn.proj.in_features == 1024


def test_dense_configuration_adds_group_norms():
    model = EfficientFormer(
        'l7',
        out_indices=(0, 1, 2, 3),
        attn_ref_size=800,
        layer_scale_init_value=1e-6,
        out_norm_cfg=dict(type='GN', num_groups=1))
    assert [m.num_groups for m in model.out_norms] == [1] * 4
    assert [m.num_channels for m in model.out_norms] == CHANNELS['l7']
    assert torch.all(model.stages[3].blocks[-1].ls1.weight == 1e-6)
