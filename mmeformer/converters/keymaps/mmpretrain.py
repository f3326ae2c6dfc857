"""Names of mmpretrain's ``EfficientFormer`` (V1 only) classifiers.

mmpretrain puts each downsample at index 0 of its stage's ``network`` entry
and keeps the official ``Flat`` module, both absorbed by renumbering blocks
by order. Its final norm is ``backbone.norm3``, a LayerNorm over channels in
every published model (a GroupNorm only when the last stage has no attention
or ``reshape_last_feat=True``, neither of which mmpretrain released).
"""
from .base import V1_ATTENTION, V1_MLP, SourceLayout, attn_bias, locator, same

_SCALES = same('ls1.weight', 'ls2.weight')

MMPRETRAIN = SourceLayout(
    name='mmpretrain',
    description='mmpretrain V1 classifier, a dict with a "state_dict" key',
    task='classification',
    ref_size=224,
    locate=locator([
        (r'backbone\.patch_embed\.(?P<rest>.+)', 'stem'),
        (r'backbone\.network\.(?P<stage>[1-9]\d*)\.0\.(?P<rest>.+)',
         'downsample'),
        (r'backbone\.network\.(?P<stage>\d+)\.(?P<block>\d+)\.(?P<rest>.+)',
         'block'),
        (r'backbone\.norm3\.(?P<rest>.+)', 'norm'),
        (r'head\.(?P<rest>(head|dist_head)\..+)', 'head'),
    ]),
    tables=dict(
        v1=dict(
            stem=(('0.', 'conv1.'), ('1.', 'conv2.')),
            downsample=(('conv.', 'conv.conv.'), ('bn.', 'conv.bn.')),
            block=_SCALES + V1_MLP,
            attn_block=_SCALES + V1_ATTENTION + attn_bias('token_mixer'),
            norm=same(''),
            head=same('head.', 'dist_head.'))))
