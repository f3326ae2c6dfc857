"""What only EfficientFormer (V1) has; the shared behaviour is tested in
test_backbone_common.py."""
import pytest
import torch
import torch.nn as nn

from mmeformer.models import EfficientFormer
from mmeformer.models.backbones.efficientformer import Meta3DBlock
from mmeformer.models.layers import MetaBlock2d


@pytest.mark.parametrize('arch, num_attn', [('l1', 1), ('l3', 4), ('l7', 8)])
def test_attention_blocks_end_the_last_stage(arch, num_attn):
    with torch.device('meta'):
        model = EfficientFormer(arch)
    kinds = [[type(b) for b in stage.blocks] for stage in model.stages]
    for stage in kinds[:3]:
        assert set(stage) == {MetaBlock2d}
    depth = len(kinds[3])
    assert kinds[3] == [MetaBlock2d] * (depth - num_attn) + [Meta3DBlock
                                                             ] * num_attn
    assert model.stages[0].downsample is None
    assert model.stem.conv1.activate.__class__ is nn.ReLU
    attn = model.stages[3].blocks[-1].token_mixer
    assert attn.qkv.out_features == 1536 and attn.proj.in_features == 1024


def test_dense_configuration_adds_group_norms():
    model = EfficientFormer(
        'l7',
        out_indices=(0, 1, 2, 3),
        attn_ref_size=800,
        layer_scale_init_value=1e-6,
        out_norm_cfg=EfficientFormer.dense_out_norm_cfg)
    assert [m.num_groups for m in model.out_norms] == [1] * 4
    assert [m.num_channels for m in model.out_norms] == [96, 192, 384, 768]
    assert torch.all(model.stages[3].blocks[-1].ls1.weight == 1e-6)


def test_final_norm_pools_like_the_official_token_layernorm():
    """The official classifier averages LayerNorm-ed ``(B, N, C)`` tokens;
    the pooled features must be the same bits, not merely close."""
    from mmpretrain.models.necks import GlobalAveragePooling
    torch.manual_seed(0)
    model = EfficientFormer('l1', final_norm=True).eval()
    nn.init.normal_(model.norm.weight)
    nn.init.normal_(model.norm.bias)
    inputs = {}
    model.norm.register_forward_hook(
        lambda module, args, output: inputs.update(x=args[0]))
    with torch.no_grad():
        pooled = GlobalAveragePooling()(model(torch.rand(2, 3, 224, 224)))[0]
        tokens = inputs['x'].flatten(2).transpose(1, 2)
        expected = nn.functional.layer_norm(tokens, (448, ), model.norm.weight,
                                            model.norm.bias).mean(1)
    assert torch.equal(pooled, expected)
