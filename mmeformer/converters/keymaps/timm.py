"""Names of timm's ``efficientformer_*`` and ``efficientformerv2_*`` models.

timm stores the layer scales as ``ls1.gamma`` / ``ls2.gamma`` (flat in both
families) and the second classifier as ``head_dist``. V1 keeps the official
parameter-free ``Flat`` module in the last stage's block list, which
renumbering by order absorbs. The V2 module names are mmeformer's apart from
the layer scales and the bias tables.
"""
import re
from typing import Optional

from .base import DROP_INDEX, Location, SourceLayout, conv_bn

_SCALES = (('ls1.gamma', 'ls1.weight'), ('ls2.gamma', 'ls2.weight'))
_HEAD = (('head.', 'head.'), ('head_dist.', 'dist_head.'))


def _attn_bias(module: str) -> tuple:
    return ((f'{module}.attention_biases', f'{module}.attn_bias.table'),
            (f'{module}.attention_bias_idxs', DROP_INDEX))


TABLES = {
    'v1': {
        'stem':
        conv_bn('conv1', 'norm1', 'conv1') +
        conv_bn('conv2', 'norm2', 'conv2'),
        'downsample':
        conv_bn('conv', 'norm', 'conv'),
        'block':
        _SCALES + conv_bn('mlp.fc1', 'mlp.norm1', 'mlp.fc1') +
        conv_bn('mlp.fc2', 'mlp.norm2', 'mlp.fc2'),
        'attn_block':
        _SCALES + (('norm1.', 'norm1.'), ('norm2.', 'norm2.'),
                   ('token_mixer.qkv.', 'token_mixer.qkv.'),
                   ('token_mixer.proj.', 'token_mixer.proj.'),
                   ('mlp.fc1.', 'mlp.fc1.'),
                   ('mlp.fc2.', 'mlp.fc2.')) + _attn_bias('token_mixer'),
        'norm': (('', ''), ),
        'head':
        _HEAD,
    },
    'v2': {
        'stem': (('conv1.', 'conv1.'), ('conv2.', 'conv2.')),
        'downsample': (('conv.', 'conv.'), ) + _attn_bias('attn') +
        (('attn.q.', 'attn.q.'), ('attn.k.', 'attn.k.'),
         ('attn.v.', 'attn.v.'), ('attn.v_local.', 'attn.v_local.'),
         ('attn.proj.', 'attn.proj.')),
        'block':
        _SCALES + (('mlp.', 'mlp.'), ),
        'attn_block':
        _SCALES + (('mlp.', 'mlp.'), ) + _attn_bias('token_mixer') +
        (('token_mixer.', 'token_mixer.'), ),
        'norm': (('', ''), ),
        'head':
        _HEAD,
    },
}


def locate(key: str) -> Optional[Location]:
    """Location of a timm key."""
    match = re.fullmatch(r'stem\.(.+)', key)
    if match:
        return Location('stem', match[1])
    match = re.fullmatch(r'stages\.(\d+)\.downsample\.(.+)', key)
    if match:
        return Location('downsample', match[2], int(match[1]))
    match = re.fullmatch(r'stages\.(\d+)\.blocks\.(\d+)\.(.+)', key)
    if match:
        return Location('block', match[3], int(match[1]), int(match[2]))
    match = re.fullmatch(r'norm\.(.+)', key)
    if match:
        return Location('norm', match[1])
    if re.match(r'(head|head_dist)\.', key):
        return Location('head', key)
    return None


TIMM = SourceLayout(
    name='timm',
    description='timm state dict (.pth, .bin or .safetensors)',
    task='classification',
    ref_size=224,
    locate=locate,
    tables=TABLES)
