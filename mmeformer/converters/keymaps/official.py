"""Names of the official EfficientFormer checkpoints.

Layouts of snap-research/EfficientFormer: the ImageNet classifiers (a
``model`` dict) and the Mask R-CNN (mmdet 2.x) and Semantic FPN (mmseg 0.x)
models. ``network`` interleaves stages (even indices) and downsamples (odd
ones); the last V1 stage holds a parameter-free ``Flat`` before its first
attention block, which renumbering by order absorbs. The dense checkpoints
keep the ImageNet-named bias buffers as zero-filled placeholders next to the
trained ``attention_biases_seg`` tables. Necks and heads keep their names:
mmdet 3.x and mmseg 1.x did not rename FPN, ``RPNHead``,
``Shared2FCBBoxHead``, ``FCNMaskHead`` or ``FPNHead``.
"""
import re
from functools import partial
from typing import Dict, Optional, Sequence

from .base import (DROP_INDEX, V1_ATTENTION, V1_MLP, Drop, Location, Rule,
                   SourceLayout, attn_bias, conv_bn, same)

DROP_PLACEHOLDER = Drop('zero placeholder of the ImageNet bias table, unused '
                        'by the official dense models')

#: Parts of the official detectors and segmentors kept under their names;
#: a model needs all of them but the optional ones.
DENSE_PARTS = {
    'detection': ('neck.', 'rpn_head.', 'roi_head.'),
    'segmentation': ('neck.', 'decode_head.', 'auxiliary_head.'),
}
OPTIONAL_PARTS = ('auxiliary_head.', )


def _conv_norms(prefix: str, names: Sequence[str], first: int = 0) -> tuple:
    """Rules for ``nn.Sequential`` conv + BN pairs at ``first``, ``+ 1``."""
    return sum((conv_bn(f'{prefix}{name}.{first}',
                        f'{prefix}{name}.{first + 1}', prefix + name)
                for name in names), ())


def _tables(dense: bool) -> Dict[str, Dict[str, Sequence[Rule]]]:
    """Rules of the classifiers (``dense=False``) or dense backbones."""
    bias = attn_bias
    if dense:
        bias = partial(
            attn_bias,
            table='attention_biases_seg',
            dropped=(('attention_bias_idxs', DROP_INDEX), ('attention_biases',
                                                           DROP_PLACEHOLDER),
                     ('attention_bias_idxs_seg', DROP_INDEX)))

    def scales(*transform) -> tuple:
        return (('layer_scale_1', 'ls1.weight', *transform),
                ('layer_scale_2', 'ls2.weight', *transform))

    stem = conv_bn('0', '1', 'conv1') + conv_bn('3', '4', 'conv2')
    # Official V2 layer scales are (C, 1, 1); mmeformer stores them flat.
    v2_block = scales(lambda scale: scale.reshape(-1)) + V1_MLP + conv_bn(
        'mlp.mid', 'mlp.mid_norm', 'mlp.mid') + _conv_norms(
            'token_mixer.', ('stride_conv', 'q', 'k', 'v', 'v_local')) + \
        _conv_norms('token_mixer.', ('proj', ), first=1) + same(
            'token_mixer.talking_head1.', 'token_mixer.talking_head2.') + \
        bias('token_mixer')
    classifier = dict(
        norm=same(''), head=(('head.', 'head.'), ('dist_head.', 'dist_head.')))
    tables = dict(
        v1=dict(
            stem=stem,
            downsample=conv_bn('proj', 'norm', 'conv'),
            block=scales() + V1_MLP,
            attn_block=scales() + V1_ATTENTION + bias('token_mixer'),
            **classifier),
        v2=dict(
            stem=stem,
            # Stages 1 and 2 open with a plain conv + BN (``proj``/``norm``),
            # stage 3 with the attention downsample (``conv``/``bn``, plus
            # ``attn``).
            downsample=conv_bn('proj', 'norm', 'conv') +
            conv_bn('conv', 'bn', 'conv') +
            (('attn.q.local.0.', 'attn.q.local.'), ) +
            _conv_norms('attn.', ('q.proj', 'k', 'v', 'v_local')) +
            _conv_norms('attn.', ('proj', ), first=1) + bias('attn'),
            block=v2_block,
            attn_block=v2_block,
            **classifier))
    if dense:
        for family in tables.values():
            del family['norm'], family['head']
            family.update(out_norm=same(''), passthrough=same(''))
    return tables


def _locate(key: str, task: str) -> Optional[Location]:
    """Location of a key of a classifier, or of a detector or segmentor."""
    if task != 'classification':
        if key.startswith(DENSE_PARTS[task]):
            return Location('passthrough', key)
        if not key.startswith('backbone.'):
            return None
        key = key[len('backbone.'):]
        # The V1 dense backbone's output norms are named after the network
        # index of the stage they follow (0, 2, 4, 6).
        match = re.fullmatch(r'norm(\d*[02468])\.(.+)', key)
        if match:
            return Location('out_norm', match[2], int(match[1]) // 2)
    elif re.match(r'(head|dist_head)\.', key):
        return Location('head', key)
    elif key.startswith('norm.'):
        return Location('norm', key[len('norm.'):])
    match = re.fullmatch(r'patch_embed\.(.+)', key)
    if match:
        return Location('stem', match[1])
    match = re.fullmatch(r'network\.(\d*[02468])\.(\d+)\.(.+)', key)
    if match:
        return Location('block', match[3], int(match[1]) // 2, int(match[2]))
    match = re.fullmatch(r'network\.(\d*[13579])\.(.+)', key)
    if match:
        return Location('downsample', match[2], (int(match[1]) + 1) // 2)
    return None


def _layout(name: str, description: str, task: str,
            ref_size: int) -> SourceLayout:
    return SourceLayout(name, description, task, ref_size,
                        partial(_locate, task=task),
                        _tables(task != 'classification'))


OFFICIAL = _layout('official',
                   'official ImageNet classifier, a dict with a "model" key',
                   'classification', 224)
OFFICIAL_DET = _layout('official-det',
                       'official Mask R-CNN checkpoint (mmdet 2.x)',
                       'detection', 800)
OFFICIAL_SEG = _layout('official-seg',
                       'official Semantic FPN checkpoint (mmseg 0.x)',
                       'segmentation', 512)
