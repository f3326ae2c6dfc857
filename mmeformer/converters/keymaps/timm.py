"""Names of timm's ``efficientformer_*`` and ``efficientformerv2_*`` models.

timm stores the layer scales as ``ls1.gamma`` / ``ls2.gamma`` (flat in both
families) and the second classifier as ``head_dist``. V1 keeps the official
parameter-free ``Flat`` module in the last stage's block list, which
renumbering by order absorbs. The V2 module names are mmeformer's apart from
the layer scales and the bias tables.
"""
from .base import (V1_ATTENTION, V1_MLP, SourceLayout, attn_bias, conv_bn,
                   locator, same)

_SCALES = (('ls1.gamma', 'ls1.weight'), ('ls2.gamma', 'ls2.weight'))
_CLASSIFIER = dict(
    norm=same(''), head=(('head.', 'head.'), ('head_dist.', 'dist_head.')))

TABLES = dict(
    v1=dict(
        stem=conv_bn('conv1', 'norm1', 'conv1') +
        conv_bn('conv2', 'norm2', 'conv2'),
        downsample=conv_bn('conv', 'norm', 'conv'),
        block=_SCALES + V1_MLP,
        attn_block=_SCALES + V1_ATTENTION + attn_bias('token_mixer'),
        **_CLASSIFIER),
    v2=dict(
        stem=same('conv1.', 'conv2.'),
        downsample=same('conv.') + attn_bias('attn') +
        same('attn.q.', 'attn.k.', 'attn.v.', 'attn.v_local.', 'attn.proj.'),
        block=_SCALES + same('mlp.'),
        attn_block=_SCALES + same('mlp.') + attn_bias('token_mixer') +
        same('token_mixer.'),
        **_CLASSIFIER))

TIMM = SourceLayout(
    name='timm',
    description='timm state dict (.pth, .bin or .safetensors)',
    task='classification',
    ref_size=224,
    locate=locator([
        (r'stem\.(?P<rest>.+)', 'stem'),
        (r'stages\.(?P<stage>\d+)\.downsample\.(?P<rest>.+)', 'downsample'),
        (r'stages\.(?P<stage>\d+)\.blocks\.(?P<block>\d+)\.(?P<rest>.+)',
         'block'),
        (r'norm\.(?P<rest>.+)', 'norm'),
        (r'(?P<rest>(head|head_dist)\..+)', 'head'),
    ]),
    tables=TABLES)
