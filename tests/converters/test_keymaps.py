"""Spot checks of the renaming: tensors of equal shapes land where they
belong (the end-to-end tests cover names, shapes and completeness)."""
import pytest
import torch

from mmeformer.converters import SOURCES
from mmeformer.converters.keymap import map_keys

EXPECTED = {
    ('official', 'l1'): {
        'patch_embed.1.running_var': 'backbone.stem.conv1.bn.running_var',
        'patch_embed.3.weight': 'backbone.stem.conv2.conv.weight',
        'network.1.proj.weight':
        'backbone.stages.1.downsample.conv.conv.weight',
        'network.2.1.mlp.norm1.weight':
        'backbone.stages.1.blocks.1.mlp.fc1.bn.weight',
        'network.6.2.layer_scale_1': 'backbone.stages.3.blocks.2.ls1.weight',
        'network.6.4.token_mixer.qkv.weight':
        'backbone.stages.3.blocks.3.token_mixer.qkv.weight',
        'network.6.4.mlp.fc2.bias': 'backbone.stages.3.blocks.3.mlp.fc2.bias',
        'norm.weight': 'backbone.norm.weight',
        'head.bias': 'head.head.bias',
        'dist_head.weight': 'head.dist_head.weight',
    },
    ('official', 'v2_s0'): {
        'network.0.1.mlp.mid_norm.weight':
        'backbone.stages.0.blocks.1.mlp.mid.bn.weight',
        'network.4.4.token_mixer.q.0.weight':
        'backbone.stages.2.blocks.4.token_mixer.q.conv.weight',
        'network.4.4.token_mixer.k.1.running_mean':
        'backbone.stages.2.blocks.4.token_mixer.k.bn.running_mean',
        'network.4.4.token_mixer.stride_conv.1.bias':
        'backbone.stages.2.blocks.4.token_mixer.stride_conv.bn.bias',
        'network.4.5.token_mixer.talking_head2.weight':
        'backbone.stages.2.blocks.5.token_mixer.talking_head2.weight',
        'network.4.4.token_mixer.proj.1.weight':
        'backbone.stages.2.blocks.4.token_mixer.proj.conv.weight',
        'network.5.attn.q.local.0.weight':
        'backbone.stages.3.downsample.attn.q.local.weight',
        'network.5.attn.q.proj.1.bias':
        'backbone.stages.3.downsample.attn.q.proj.bn.bias',
        'network.5.conv.weight':
        'backbone.stages.3.downsample.conv.conv.weight',
        'network.5.bn.running_var':
        'backbone.stages.3.downsample.conv.bn.running_var',
        'network.6.3.layer_scale_1': 'backbone.stages.3.blocks.3.ls1.weight',
        'norm.running_mean': 'backbone.norm.running_mean',
    },
    ('timm', 'l3'): {
        'stem.norm2.weight': 'backbone.stem.conv2.bn.weight',
        'stages.2.downsample.norm.bias':
        'backbone.stages.2.downsample.conv.bn.bias',
        # The parameter-free Flat module is block 2 of the last stage.
        'stages.3.blocks.1.ls2.gamma': 'backbone.stages.3.blocks.1.ls2.weight',
        'stages.3.blocks.3.token_mixer.attention_biases':
        'backbone.stages.3.blocks.2.token_mixer.attn_bias.table',
        'stages.3.blocks.6.ls2.gamma': 'backbone.stages.3.blocks.5.ls2.weight',
        'head_dist.bias': 'head.dist_head.bias',
    },
    ('timm', 'v2_s1'): {
        'stages.3.downsample.attn.v_local.bn.weight':
        'backbone.stages.3.downsample.attn.v_local.bn.weight',
        'stages.2.blocks.7.ls1.gamma':
        'backbone.stages.2.blocks.7.ls1.weight',
        'stages.2.blocks.7.token_mixer.attention_biases':
        'backbone.stages.2.blocks.7.token_mixer.attn_bias.table',
        'stages.0.blocks.2.mlp.mid.conv.weight':
        'backbone.stages.0.blocks.2.mlp.mid.conv.weight',
    },
    ('mmpretrain', 'l7'): {
        'backbone.patch_embed.1.conv.weight':
        'backbone.stem.conv2.conv.weight',
        'backbone.network.1.0.bn.running_mean':
        'backbone.stages.1.downsample.conv.bn.running_mean',
        'backbone.network.1.1.mlp.norm2.weight':
        'backbone.stages.1.blocks.0.mlp.fc2.bn.weight',
        # Downsample at 0 and Flat at 1: every block of stage 3 attends.
        'backbone.network.3.2.token_mixer.qkv.bias':
        'backbone.stages.3.blocks.0.token_mixer.qkv.bias',
        'backbone.network.3.9.ls2.weight':
        'backbone.stages.3.blocks.7.ls2.weight',
        'backbone.norm3.bias': 'backbone.norm.bias',
        'head.dist_head.weight': 'head.dist_head.weight',
    },
    ('official-det', 'l1'): {
        'backbone.norm0.weight': 'backbone.out_norms.0.weight',
        'backbone.norm6.bias': 'backbone.out_norms.3.bias',
        'backbone.network.6.4.token_mixer.attention_biases_seg':
        'backbone.stages.3.blocks.3.token_mixer.attn_bias.table',
        'roi_head.bbox_head.fc_cls.weight': 'roi_head.bbox_head.fc_cls.weight',
    },
    ('official-seg', 'v2_s2'): {
        'backbone.network.5.attn.attention_biases_seg':
        'backbone.stages.3.downsample.attn.attn_bias.table',
        'decode_head.conv_seg.weight': 'decode_head.conv_seg.weight',
    },
}


@pytest.mark.parametrize('source,arch', EXPECTED)
def test_spot_checks(source, arch, manifests):
    prefix = {
        'official': 'official_cls_',
        'official-det': 'official_detection_',
        'official-seg': 'official_segmentation_'
    }.get(source, f'{source}_')
    keys = dict(manifests[prefix + arch])
    keys.update((k, [1]) for k in EXPECTED[(source, arch)]
                if k.startswith(('roi_head.', 'decode_head.')))
    tensors = {
        k: torch.empty(shape, device='meta')
        for k, shape in keys.items()
    }
    mapping = map_keys(tensors, SOURCES[source])
    assert not mapping.unknown and not mapping.clashes
    renamed = {origin: target for target, origin in mapping.origins.items()}
    for key, target in EXPECTED[(source, arch)].items():
        assert renamed[key] == target


def test_dropped_tensors(manifests):
    tensors = {
        k: torch.empty(shape, device='meta')
        for k, shape in manifests['official_detection_v2_s0'].items()
    }
    dropped = dict(map_keys(tensors, SOURCES['official-det']).dropped)
    prefix = 'backbone.network.5.attn.'
    assert 'placeholder' in dropped[prefix + 'attention_biases']
    assert 'index buffer' in dropped[prefix + 'attention_bias_idxs']
    assert 'index buffer' in dropped[prefix + 'attention_bias_idxs_seg']
    assert len(dropped) == 15


def test_official_v2_layer_scales_are_flattened(manifests):
    tensors = {
        k: torch.zeros(shape)
        for k, shape in manifests['official_cls_v2_s0'].items()
    }
    mapping = map_keys(tensors, SOURCES['official'])
    assert mapping.family == 'v2'
    assert mapping.tensors['backbone.stages.2.blocks.4.ls1.weight'].shape == \
        (96, )
