"""Names of mmpretrain's ``EfficientFormer`` (V1 only) classifiers.

mmpretrain puts each downsample at index 0 of its stage's ``network`` entry
and keeps the official ``Flat`` module, both absorbed by renumbering blocks
by order. Its final norm is ``backbone.norm3``, a LayerNorm over channels in
every published model (a GroupNorm only when the last stage has no attention
or ``reshape_last_feat=True``, neither of which mmpretrain released).
"""
import re
from typing import Optional

from .base import DROP_INDEX, Location, SourceLayout, conv_bn

_SCALES = (('ls1.weight', 'ls1.weight'), ('ls2.weight', 'ls2.weight'))

TABLES = {
    'v1': {
        'stem': (('0.', 'conv1.'), ('1.', 'conv2.')),
        'downsample': (('conv.', 'conv.conv.'), ('bn.', 'conv.bn.')),
        'block':
        _SCALES + conv_bn('mlp.fc1', 'mlp.norm1', 'mlp.fc1') +
        conv_bn('mlp.fc2', 'mlp.norm2', 'mlp.fc2'),
        'attn_block':
        _SCALES +
        (('norm1.', 'norm1.'), ('norm2.', 'norm2.'),
         ('token_mixer.qkv.', 'token_mixer.qkv.'),
         ('token_mixer.proj.', 'token_mixer.proj.'),
         ('token_mixer.attention_biases', 'token_mixer.attn_bias.table'),
         ('token_mixer.attention_bias_idxs', DROP_INDEX),
         ('mlp.fc1.', 'mlp.fc1.'), ('mlp.fc2.', 'mlp.fc2.')),
        'norm': (('', ''), ),
        'head': (('head.', 'head.'), ('dist_head.', 'dist_head.')),
    },
}


def locate(key: str) -> Optional[Location]:
    """Location of an mmpretrain key."""
    match = re.fullmatch(r'backbone\.patch_embed\.(.+)', key)
    if match:
        return Location('stem', match[1])
    match = re.fullmatch(r'backbone\.network\.(\d+)\.(\d+)\.(.+)', key)
    if match:
        stage, index = int(match[1]), int(match[2])
        if stage > 0 and index == 0:
            return Location('downsample', match[3], stage)
        return Location('block', match[3], stage, index)
    match = re.fullmatch(r'backbone\.norm3\.(.+)', key)
    if match:
        return Location('norm', match[1])
    match = re.fullmatch(r'head\.((head|dist_head)\..+)', key)
    if match:
        return Location('head', match[1])
    return None


MMPRETRAIN = SourceLayout(
    name='mmpretrain',
    description='mmpretrain V1 classifier, a dict with a "state_dict" key',
    task='classification',
    ref_size=224,
    locate=locate,
    tables=TABLES)
