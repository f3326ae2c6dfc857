"""Where each critical converted tensor must come from.

The tables below are written from the source code bases' module names, not
derived from the package's key maps, and list the tensors a wrong rule could
silently exchange with a tensor of the same shape: q and k, the two talking
heads, the two layer scales, the norms of one block, the stem's two BNs, the
classifier and distillation heads. Every source tensor holds its own random
values, so a converted tensor equals exactly one of them. The conversion
tests of ``test_convert.py`` check these tables.
"""
import hashlib

import torch

#: The attention-bias table of a token mixer, in every source but the
#: official V2 (whose rules name the table relative to the token mixer).
TOKEN_BIAS = ('token_mixer.attention_biases', 'token_mixer.attn_bias.table')


def block(stage, index):
    return f'backbone.stages.{stage}.blocks.{index}.'


def pairs(source_prefix, target_prefix, names):
    """``{source: target}`` for ``names``: ``(source, target)`` pairs, or
    one string for a name the two share."""
    names = [(name, name) if isinstance(name, str) else name for name in names]
    return {
        source_prefix + source: target_prefix + target
        for source, target in names
    }


#: Official V1 (L1): network.6 holds three 4D blocks, the parameter-free
#: Flat (index 3) and the attention block, which becomes block 3.
OFFICIAL_L1 = {
    'patch_embed.0.weight':
    'backbone.stem.conv1.conv.weight',
    'patch_embed.1.weight':
    'backbone.stem.conv1.bn.weight',
    'patch_embed.3.weight':
    'backbone.stem.conv2.conv.weight',
    'patch_embed.4.bias':
    'backbone.stem.conv2.bn.bias',
    'network.1.proj.weight':
    'backbone.stages.1.downsample.conv.conv.weight',
    'network.1.norm.weight':
    'backbone.stages.1.downsample.conv.bn.weight',
    **pairs('network.0.0.', block(0, 0), [
                ('layer_scale_1', 'ls1.weight'),
                ('layer_scale_2', 'ls2.weight'),
                ('mlp.norm1.weight', 'mlp.fc1.bn.weight'),
                ('mlp.norm2.bias', 'mlp.fc2.bn.bias'),
            ]),
    **pairs('network.6.4.', block(3, 3), [
                ('layer_scale_1', 'ls1.weight'),
                ('layer_scale_2', 'ls2.weight'),
                ('norm1.weight', 'norm1.weight'),
                ('norm2.weight', 'norm2.weight'),
                ('norm1.bias', 'norm1.bias'),
                ('norm2.bias', 'norm2.bias'),
                ('token_mixer.qkv.weight', 'token_mixer.qkv.weight'),
                ('token_mixer.proj.bias', 'token_mixer.proj.bias'),
                TOKEN_BIAS,
                ('mlp.fc2.bias', 'mlp.fc2.bias'),
            ]),
    'norm.weight':
    'backbone.norm.weight',
    'head.weight':
    'head.head.weight',
    'dist_head.weight':
    'head.dist_head.weight',
    'head.bias':
    'head.head.bias',
    'dist_head.bias':
    'head.dist_head.bias',
}

#: The attention block of the official V2 (S0) stage 2 and the attention
#: downsample before stage 3; ``proj.0`` of both is an activation.
V2_ATTENTION = [
    ('q.0.weight', 'q.conv.weight'),
    ('k.0.weight', 'k.conv.weight'),
    ('q.1.weight', 'q.bn.weight'),
    ('k.1.weight', 'k.bn.weight'),
    ('v.0.weight', 'v.conv.weight'),
    ('v_local.1.bias', 'v_local.bn.bias'),
    ('talking_head1.weight', 'talking_head1.weight'),
    ('talking_head2.weight', 'talking_head2.weight'),
    ('talking_head1.bias', 'talking_head1.bias'),
    ('talking_head2.bias', 'talking_head2.bias'),
    ('stride_conv.1.weight', 'stride_conv.bn.weight'),
    ('proj.1.weight', 'proj.conv.weight'),
    ('proj.2.weight', 'proj.bn.weight'),
    ('attention_biases', 'attn_bias.table'),
]
V2_MLP = [
    ('mlp.norm1.weight', 'mlp.fc1.bn.weight'),
    ('mlp.mid_norm.weight', 'mlp.mid.bn.weight'),
    ('mlp.norm2.weight', 'mlp.fc2.bn.weight'),
    ('mlp.mid.weight', 'mlp.mid.conv.weight'),
]
OFFICIAL_S0 = {
    'patch_embed.1.weight':
    'backbone.stem.conv1.bn.weight',
    'patch_embed.4.weight':
    'backbone.stem.conv2.bn.weight',
    'network.1.proj.weight':
    'backbone.stages.1.downsample.conv.conv.weight',
    **pairs('network.4.4.token_mixer.',
            block(2, 4) + 'token_mixer.', V2_ATTENTION),
    **pairs('network.4.4.', block(2, 4), V2_MLP),
    **pairs('network.5.', 'backbone.stages.3.downsample.', [
        ('conv.weight', 'conv.conv.weight'),
        ('bn.weight', 'conv.bn.weight'),
        ('attn.q.local.0.weight', 'attn.q.local.weight'),
        ('attn.q.proj.0.weight', 'attn.q.proj.conv.weight'),
        ('attn.k.0.weight', 'attn.k.conv.weight'),
        ('attn.q.proj.1.bias', 'attn.q.proj.bn.bias'),
        ('attn.k.1.bias', 'attn.k.bn.bias'),
        ('attn.attention_biases', 'attn.attn_bias.table'),
    ]),
    'norm.weight':
    'backbone.norm.weight',
    'head.weight':
    'head.head.weight',
    'dist_head.weight':
    'head.dist_head.weight',
}
#: Official V2 layer scales are (C, 1, 1); the converted ones are flat.
OFFICIAL_S0_SCALES = pairs('network.4.4.', block(2, 4),
                           [('layer_scale_1', 'ls1.weight'),
                            ('layer_scale_2', 'ls2.weight')])

#: timm V1 (L1): Flat is block 3 of stage 3, as in the official model.
TIMM_L1 = {
    'stem.conv1.weight':
    'backbone.stem.conv1.conv.weight',
    'stem.norm1.weight':
    'backbone.stem.conv1.bn.weight',
    'stem.norm2.weight':
    'backbone.stem.conv2.bn.weight',
    'stages.3.downsample.conv.weight':
    'backbone.stages.3.downsample.conv.conv.weight',
    'stages.3.downsample.norm.bias':
    'backbone.stages.3.downsample.conv.bn.bias',
    **pairs('stages.0.blocks.0.', block(0, 0), [
                ('ls1.gamma', 'ls1.weight'),
                ('ls2.gamma', 'ls2.weight'),
                ('mlp.norm1.weight', 'mlp.fc1.bn.weight'),
                ('mlp.norm2.weight', 'mlp.fc2.bn.weight'),
            ]),
    **pairs('stages.3.blocks.4.', block(3, 3), [
                ('ls1.gamma', 'ls1.weight'),
                ('ls2.gamma', 'ls2.weight'),
                ('norm1.weight', 'norm1.weight'),
                ('norm2.weight', 'norm2.weight'),
                ('token_mixer.qkv.bias', 'token_mixer.qkv.bias'),
                TOKEN_BIAS,
            ]),
    'norm.bias':
    'backbone.norm.bias',
    'head.weight':
    'head.head.weight',
    'head_dist.weight':
    'head.dist_head.weight',
}

#: timm V2 (S0): ConvNorm modules are named ``conv`` / ``bn`` already.
TIMM_S0 = {
    **pairs('stem.', 'backbone.stem.', ['conv1.bn.weight', 'conv2.bn.weight']),
    **pairs('stages.2.blocks.4.', block(2, 4), [
                ('ls1.gamma', 'ls1.weight'),
                ('ls2.gamma', 'ls2.weight'),
                TOKEN_BIAS,
                'mlp.fc1.bn.weight',
                'mlp.mid.bn.weight',
            ]),
    **pairs('stages.2.blocks.4.token_mixer.',
            block(2, 4) + 'token_mixer.', [
                'q.conv.weight',
                'k.conv.weight',
                'q.bn.bias',
                'k.bn.bias',
                'talking_head1.weight',
                'talking_head2.weight',
            ]),
    **pairs('stages.3.downsample.', 'backbone.stages.3.downsample.', [
        'attn.q.proj.conv.weight',
        'attn.k.conv.weight',
        ('attn.attention_biases', 'attn.attn_bias.table'),
    ]),
    'norm.weight':
    'backbone.norm.weight',
    'head.weight':
    'head.head.weight',
    'head_dist.weight':
    'head.dist_head.weight',
}

#: mmpretrain V1 (L1): each stage after the first opens with its downsample
#: at index 0; network.3 then holds three 4D blocks, Flat (4) and the
#: attention block (5), which becomes block 3.
MMPRETRAIN_L1 = {
    'backbone.patch_embed.0.conv.weight':
    'backbone.stem.conv1.conv.weight',
    'backbone.patch_embed.0.bn.weight':
    'backbone.stem.conv1.bn.weight',
    'backbone.patch_embed.1.bn.weight':
    'backbone.stem.conv2.bn.weight',
    'backbone.network.1.0.conv.weight':
    'backbone.stages.1.downsample.conv.conv.weight',
    'backbone.network.1.0.bn.weight':
    'backbone.stages.1.downsample.conv.bn.weight',
    **pairs('backbone.network.0.0.', block(0, 0), [
                ('ls1.weight', 'ls1.weight'),
                ('ls2.weight', 'ls2.weight'),
                ('mlp.norm1.weight', 'mlp.fc1.bn.weight'),
                ('mlp.norm2.weight', 'mlp.fc2.bn.weight'),
            ]),
    'backbone.network.1.2.ls1.weight':
    block(1, 1) + 'ls1.weight',
    **pairs('backbone.network.3.5.', block(3, 3), [
                ('ls1.weight', 'ls1.weight'),
                ('ls2.weight', 'ls2.weight'),
                ('norm1.weight', 'norm1.weight'),
                ('norm2.weight', 'norm2.weight'),
                ('token_mixer.qkv.weight', 'token_mixer.qkv.weight'),
                TOKEN_BIAS,
            ]),
    'backbone.norm3.weight':
    'backbone.norm.weight',
    'head.head.weight':
    'head.head.weight',
    'head.dist_head.weight':
    'head.dist_head.weight',
}

OFFICIAL_SCALES = [('layer_scale_1', 'ls1.weight'),
                   ('layer_scale_2', 'ls2.weight')]
V2_QK = [('q.0.weight', 'q.conv.weight'), ('k.0.weight', 'k.conv.weight')]
V1_ATTENTION_BLOCK = OFFICIAL_SCALES + ['token_mixer.qkv.weight']

#: Official dense V1 (L3, detection), under ``backbone.``: network.6 holds
#: two 4D blocks, Flat (index 2) and four attention blocks, which become
#: blocks 2 to 5, each with its own trained ``attention_biases_seg`` table
#: of one shape; ``norm0``, ``norm2``, ... norm the outputs of network.0,
#: network.2, ..., the stages.
OFFICIAL_DET_L3 = {
    'backbone.patch_embed.1.weight':
    'backbone.stem.conv1.bn.weight',
    'backbone.patch_embed.4.weight':
    'backbone.stem.conv2.bn.weight',
    **{
        f'backbone.network.6.{i}.token_mixer.attention_biases_seg':
        block(3, i - 1) + 'token_mixer.attn_bias.table'
        for i in (3, 4, 5, 6)
    },
    **pairs('backbone.network.6.3.', block(3, 2), V1_ATTENTION_BLOCK),
    **pairs('backbone.network.6.6.', block(3, 5), V1_ATTENTION_BLOCK),
    'backbone.norm0.weight':
    'backbone.out_norms.0.weight',
    'backbone.norm0.bias':
    'backbone.out_norms.0.bias',
    'backbone.norm6.weight':
    'backbone.out_norms.3.weight',
}

#: Official dense V2 (S2, segmentation): attention blocks 8 to 11 of
#: network.4 (stage 2) and 4 to 7 of network.6 (stage 3), after the
#: attention downsample network.5, each with its own table of one shape.
OFFICIAL_SEG_S2 = {
    'backbone.patch_embed.1.weight':
    'backbone.stem.conv1.bn.weight',
    'backbone.patch_embed.4.weight':
    'backbone.stem.conv2.bn.weight',
    **{
        f'backbone.network.{net}.{i}.token_mixer.attention_biases_seg':
        block(stage, i) + 'token_mixer.attn_bias.table'
        for net, stage, blocks in ((4, 2, range(8, 12)), (6, 3, range(4, 8)))
        for i in blocks
    },
    'backbone.network.5.attn.attention_biases_seg':
    'backbone.stages.3.downsample.attn.attn_bias.table',
    **pairs('backbone.network.4.8.token_mixer.',
            block(2, 8) + 'token_mixer.', V2_QK),
    **pairs('backbone.network.6.7.token_mixer.',
            block(3, 7) + 'token_mixer.', V2_QK),
}
OFFICIAL_SEG_S2_SCALES = {
    **pairs('backbone.network.4.8.', block(2, 8), OFFICIAL_SCALES),
    **pairs('backbone.network.4.11.', block(2, 11), OFFICIAL_SCALES),
}

CASES = {
    ('official', 'l1'): (OFFICIAL_L1, {}),
    ('official', 's0'): (OFFICIAL_S0, OFFICIAL_S0_SCALES),
    ('timm', 'l1'): (TIMM_L1, {}),
    ('timm', 's0'): (TIMM_S0, {}),
    ('mmpretrain', 'l1'): (MMPRETRAIN_L1, {}),
    ('official-det', 'l3'): (OFFICIAL_DET_L3, {}),
    ('official-seg', 's2'): (OFFICIAL_SEG_S2, OFFICIAL_SEG_S2_SCALES),
}


def wrong_origins(source, arch, tensors, written):
    """The critical tensors of ``written`` (converted from ``tensors`` of
    ``source``) that are not exactly the source tensor they must be.
    ``(source, arch)`` must be a case of :data:`CASES`."""
    assert (source, arch) in CASES, (
        f'no expected origins for {source} {arch}: add the case to CASES')
    exact, flattened = CASES[source, arch]
    critical = list(exact) + list(flattened)
    contents = {
        hashlib.sha1(tensors[k].numpy().tobytes()).hexdigest()
        for k in critical
    }
    assert len(contents) == len(critical), 'source tensors must differ'
    return [
        f'{target} is not {origin}' for origin, target in exact.items()
        if not torch.equal(written[target], tensors[origin])
    ] + [
        f'{target} is not {origin}, flattened'
        for origin, target in flattened.items()
        if not torch.equal(written[target], tensors[origin].reshape(-1))
    ]
