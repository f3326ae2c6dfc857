"""Names of the official EfficientFormer checkpoints.

Layouts of snap-research/EfficientFormer: the ImageNet classifiers
(``models/``, a ``model`` dict) and the Mask R-CNN (mmdet 2.x) and Semantic
FPN (mmseg 0.x) models of ``detection/`` and ``segmentation/``.

``network`` interleaves stages (even indices) and downsamples (odd ones); the
last V1 stage holds a parameter-free ``Flat`` before its first attention
block, which renumbering by order absorbs.

The dense checkpoints keep the ImageNet-named bias buffers as zero-filled
placeholders next to the trained ``attention_biases_seg`` tables. The necks
and heads keep their names: mmdet 3.x and mmseg 1.x did not rename FPN,
``RPNHead``, ``Shared2FCBBoxHead``, ``FCNMaskHead`` or ``FPNHead`` (their
model zoos still serve checkpoints trained with mmdet 2.x and mmseg 0.x for
these models).
"""
import re
from typing import Dict, Optional, Sequence

from .base import DROP_INDEX, Drop, Location, Rule, SourceLayout, conv_bn

DROP_PLACEHOLDER = Drop('zero placeholder of the ImageNet bias table, unused '
                        'by the official dense models')

#: Parts of the official detectors and segmentors kept under their names;
#: a model needs all of them but the optional ones.
DENSE_PARTS = {
    'detection': ('neck.', 'rpn_head.', 'roi_head.'),
    'segmentation': ('neck.', 'decode_head.', 'auxiliary_head.'),
}
OPTIONAL_PARTS = ('auxiliary_head.', )


def _tables(dense: bool) -> Dict[str, Dict[str, Sequence[Rule]]]:
    """Rules of the classifiers (``dense=False``) or dense backbones."""
    if dense:
        bias = 'attention_biases_seg'
        ignored = (('attention_biases',
                    DROP_PLACEHOLDER), ('attention_bias_idxs_seg', DROP_INDEX),
                   ('attention_bias_idxs', DROP_INDEX))
    else:
        bias = 'attention_biases'
        ignored = (('attention_bias_idxs', DROP_INDEX), )

    def attn_bias(module: str, target: str) -> tuple:
        return ((f'{module}.{bias}', f'{target}.attn_bias.table'), ) + tuple(
            (f'{module}.{name}', drop) for name, drop in ignored)

    stem = conv_bn('0', '1', 'conv1') + conv_bn('3', '4', 'conv2')
    head = (('head.', 'head.'), ('dist_head.', 'dist_head.'))
    v1_scales = (('layer_scale_1', 'ls1.weight'), ('layer_scale_2',
                                                   'ls2.weight'))
    v2_scales = (('layer_scale_1', 'ls1.weight', 'flatten'),
                 ('layer_scale_2', 'ls2.weight', 'flatten'))
    v2_block = (
        v2_scales + conv_bn('mlp.fc1', 'mlp.norm1', 'mlp.fc1') +
        conv_bn('mlp.mid', 'mlp.mid_norm', 'mlp.mid') +
        conv_bn('mlp.fc2', 'mlp.norm2', 'mlp.fc2') +
        conv_bn('token_mixer.stride_conv.0', 'token_mixer.stride_conv.1',
                'token_mixer.stride_conv') +
        conv_bn('token_mixer.q.0', 'token_mixer.q.1', 'token_mixer.q') +
        conv_bn('token_mixer.k.0', 'token_mixer.k.1', 'token_mixer.k') +
        conv_bn('token_mixer.v.0', 'token_mixer.v.1', 'token_mixer.v') +
        conv_bn('token_mixer.v_local.0', 'token_mixer.v_local.1',
                'token_mixer.v_local') +
        conv_bn('token_mixer.proj.1', 'token_mixer.proj.2', 'token_mixer.proj')
        + (('token_mixer.talking_head1.', 'token_mixer.talking_head1.'),
           ('token_mixer.talking_head2.', 'token_mixer.talking_head2.')) +
        attn_bias('token_mixer', 'token_mixer'))
    tables = {
        'v1': {
            'stem':
            stem,
            'downsample':
            conv_bn('proj', 'norm', 'conv'),
            'block':
            v1_scales + conv_bn('mlp.fc1', 'mlp.norm1', 'mlp.fc1') +
            conv_bn('mlp.fc2', 'mlp.norm2', 'mlp.fc2'),
            'attn_block':
            v1_scales + (('norm1.', 'norm1.'), ('norm2.', 'norm2.'),
                         ('token_mixer.qkv.', 'token_mixer.qkv.'),
                         ('token_mixer.proj.', 'token_mixer.proj.'),
                         ('mlp.fc1.', 'mlp.fc1.'), ('mlp.fc2.', 'mlp.fc2.')) +
            attn_bias('token_mixer', 'token_mixer'),
            'norm': (('', ''), ),
            'head':
            head,
        },
        'v2': {
            'stem':
            stem,
            # Stages 1 and 2 open with a plain conv + BN (``proj``/``norm``),
            # stage 3 with the attention downsample (``conv``/``bn`` plus
            # ``attn``).
            'downsample':
            conv_bn('proj', 'norm', 'conv') + conv_bn('conv', 'bn', 'conv') +
            (('attn.q.local.0.', 'attn.q.local.'), ) +
            conv_bn('attn.q.proj.0', 'attn.q.proj.1', 'attn.q.proj') +
            conv_bn('attn.k.0', 'attn.k.1', 'attn.k') +
            conv_bn('attn.v.0', 'attn.v.1', 'attn.v') +
            conv_bn('attn.v_local.0', 'attn.v_local.1', 'attn.v_local') +
            conv_bn('attn.proj.1', 'attn.proj.2', 'attn.proj') +
            attn_bias('attn', 'attn'),
            'block':
            v2_block,
            'attn_block':
            v2_block,
            'norm': (('', ''), ),
            'head':
            head,
        },
    }
    if dense:
        for family in tables.values():
            del family['norm'], family['head']
            family['out_norm'] = (('', ''), )
            family['passthrough'] = (('', ''), )
    return tables


def _locate_backbone(key: str, classifier: bool) -> Optional[Location]:
    match = re.fullmatch(r'patch_embed\.(.+)', key)
    if match:
        return Location('stem', match[1])
    match = re.fullmatch(r'network\.(\d+)\.(\d+)\.(.+)', key)
    if match:
        index = int(match[1])
        return Location('block', match[3], index //
                        2, int(match[2])) if index % 2 == 0 else None
    match = re.fullmatch(r'network\.(\d+)\.(.+)', key)
    if match:
        index = int(match[1])
        return Location('downsample', match[2],
                        (index + 1) // 2) if index % 2 == 1 else None
    if classifier:
        match = re.fullmatch(r'norm\.(.+)', key)
        if match:
            return Location('norm', match[1])
        if re.match(r'(head|dist_head)\.', key):
            return Location('head', key)
        return None
    # The V1 dense backbone's output norms are named after the network
    # index of the stage they follow (0, 2, 4, 6).
    match = re.fullmatch(r'norm(\d+)\.(.+)', key)
    if match and int(match[1]) % 2 == 0:
        return Location('out_norm', match[2], int(match[1]) // 2)
    return None


def _locate_classifier(key: str) -> Optional[Location]:
    return _locate_backbone(key, classifier=True)


def _dense_locator(task: str):

    def locate(key: str) -> Optional[Location]:
        if key.startswith('backbone.'):
            return _locate_backbone(key[len('backbone.'):], classifier=False)
        if key.startswith(DENSE_PARTS[task]):
            return Location('passthrough', key)
        return None

    return locate


OFFICIAL = SourceLayout(
    name='official',
    description='official ImageNet classifier, a dict with a "model" key',
    task='classification',
    ref_size=224,
    locate=_locate_classifier,
    tables=_tables(dense=False))

OFFICIAL_DET = SourceLayout(
    name='official-det',
    description='official Mask R-CNN checkpoint (mmdet 2.x)',
    task='detection',
    ref_size=800,
    locate=_dense_locator('detection'),
    tables=_tables(dense=True))

OFFICIAL_SEG = SourceLayout(
    name='official-seg',
    description='official Semantic FPN checkpoint (mmseg 0.x)',
    task='segmentation',
    ref_size=512,
    locate=_dense_locator('segmentation'),
    tables=_tables(dense=True))
