"""How the official code, timm and mmpretrain name EfficientFormer tensors,
and which of those layouts a state dict is in."""
import re
from functools import partial
from typing import Mapping, Optional

from .keymap import (DROP_INDEX, V1_ATTENTION, V1_MLP, Drop, SourceLayout,
                     attn_bias, conv_bn, map_keys, same)

#: Parts of the official dense models kept under their names (mmdet 3.x and
#: mmseg 1.x did not rename them); a model needs all but the optional ones.
DENSE_PARTS = {
    'detection': ('neck.', 'rpn_head.', 'roi_head.'),
    'segmentation': ('neck.', 'decode_head.', 'auxiliary_head.'),
}
OPTIONAL_PARTS = ('auxiliary_head.', )

#: Key prefixes only mmeformer's backbones produce.
MMEFORMER_PREFIXES = ('backbone.stem.', 'backbone.stages.')

#: What the official dense checkpoints keep beside their trained
#: ``attention_biases_seg`` tables.
DENSE_BIAS_DROPPED = (('attention_bias_idxs', DROP_INDEX),
                      ('attention_biases',
                       Drop('zero placeholder of the ImageNet bias table, '
                            'unused by the official dense models')),
                      ('attention_bias_idxs_seg', DROP_INDEX))


def _conv_norms(prefix: str, names, first: int = 0) -> tuple:
    """Rules for ``nn.Sequential`` conv + BN pairs at ``first``, ``+ 1``."""
    return sum((conv_bn(f'{prefix}{name}.{first}',
                        f'{prefix}{name}.{first + 1}', prefix + name)
                for name in names), ())


def _official(name: str, description: str, task: str,
              ref_size: int) -> SourceLayout:
    """A layout of snap-research/EfficientFormer. ``network`` interleaves
    stages and downsamples; the last V1 stage holds a parameter-free
    ``Flat``. Dense backbones are under ``backbone.``, beside the parts of
    :data:`DENSE_PARTS`."""
    dense = task != 'classification'
    bias = attn_bias
    if dense:
        bias = partial(
            attn_bias,
            table='attention_biases_seg',
            dropped=DENSE_BIAS_DROPPED)
    scales = (('layer_scale_1', 'ls1.weight'), ('layer_scale_2', 'ls2.weight'))
    stem = conv_bn('0', '1', 'conv1') + conv_bn('3', '4', 'conv2')
    # Official V2 layer scales are (C, 1, 1); mmeformer stores them flat.
    flat_scales = tuple(
        (*rule, lambda scale: scale.reshape(-1)) for rule in scales)
    v2_block = (
        flat_scales + V1_MLP + conv_bn('mlp.mid', 'mlp.mid_norm', 'mlp.mid') +
        _conv_norms('token_mixer.',
                    ('stride_conv', 'q', 'k', 'v', 'v_local')) +
        _conv_norms('token_mixer.', ('proj', ), first=1) +
        same('token_mixer.talking_head1.', 'token_mixer.talking_head2.') +
        bias('token_mixer'))
    ends = dict(norm=same(''), head=same('head.', 'dist_head.'))
    if dense:
        ends = dict(out_norm=same(''), passthrough=same(''))
    tables = dict(
        v1=dict(
            stem=stem,
            downsample=conv_bn('proj', 'norm', 'conv'),
            block=scales + V1_MLP,
            attn_block=scales + V1_ATTENTION + bias('token_mixer'),
            **ends),
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
            **ends))
    prefix = r'backbone\.' if dense else ''
    patterns = [
        (prefix + r'patch_embed\.(?P<rest>.+)', 'stem'),
        (prefix + r'network\.(?P<network>\d*[02468])\.(?P<block>\d+)\.'
         r'(?P<rest>.+)', 'block'),
        (prefix + r'network\.(?P<network>\d*[13579])\.(?P<rest>.+)',
         'downsample'),
    ]
    if dense:
        # The V1 output norms are named after the network index of the
        # stage they follow (0, 2, 4, 6).
        patterns += [
            (r'backbone\.norm(?P<network>\d*[02468])\.(?P<rest>.+)',
             'out_norm'),
            ('(?P<rest>(' + '|'.join(map(re.escape, DENSE_PARTS[task])) +
             ').+)', 'passthrough'),
        ]
    else:
        patterns += [(r'(?P<rest>(head|dist_head)\..+)', 'head'),
                     (r'norm\.(?P<rest>.+)', 'norm')]
    return SourceLayout(name, description, task, ref_size, patterns, tables)


# timm: flat layer scales ``ls1.gamma`` / ``ls2.gamma``, the second classifier
# ``head_dist``; V1 keeps ``Flat``, V2 has mmeformer's names but for those and
# the biases.
_TIMM_SCALES = (('ls1.gamma', 'ls1.weight'), ('ls2.gamma', 'ls2.weight'))
_TIMM_ENDS = dict(
    norm=same(''), head=(('head.', 'head.'), ('head_dist.', 'dist_head.')))
TIMM = SourceLayout(
    'timm', 'timm state dict (.pth, .bin or .safetensors)', 'classification',
    224, [
        (r'stem\.(?P<rest>.+)', 'stem'),
        (r'stages\.(?P<stage>\d+)\.downsample\.(?P<rest>.+)', 'downsample'),
        (r'stages\.(?P<stage>\d+)\.blocks\.(?P<block>\d+)\.(?P<rest>.+)',
         'block'),
        (r'norm\.(?P<rest>.+)', 'norm'),
        (r'(?P<rest>(head|head_dist)\..+)', 'head'),
    ],
    dict(
        v1=dict(
            stem=conv_bn('conv1', 'norm1', 'conv1') +
            conv_bn('conv2', 'norm2', 'conv2'),
            downsample=conv_bn('conv', 'norm', 'conv'),
            block=_TIMM_SCALES + V1_MLP,
            attn_block=_TIMM_SCALES + V1_ATTENTION + attn_bias('token_mixer'),
            **_TIMM_ENDS),
        v2=dict(
            stem=same('conv1.', 'conv2.'),
            downsample=same('conv.') + attn_bias('attn') +
            same('attn.q.', 'attn.k.', 'attn.v.', 'attn.v_local.',
                 'attn.proj.'),
            block=_TIMM_SCALES + same('mlp.'),
            attn_block=_TIMM_SCALES + same('mlp.') + attn_bias('token_mixer') +
            same('token_mixer.'),
            **_TIMM_ENDS)))

# mmpretrain (V1 only): each downsample at index 0 of its stage's ``network``
# entry, ``Flat`` kept, the final norm ``backbone.norm3`` (a LayerNorm over
# channels in every published model).
_MMPRETRAIN_SCALES = same('ls1.weight', 'ls2.weight')
MMPRETRAIN = SourceLayout(
    'mmpretrain', 'mmpretrain V1 classifier, a dict with a "state_dict" key',
    'classification', 224, [
        (r'backbone\.patch_embed\.(?P<rest>.+)', 'stem'),
        (r'backbone\.network\.(?P<stage>[1-9]\d*)\.0\.(?P<rest>.+)',
         'downsample'),
        (r'backbone\.network\.(?P<stage>\d+)\.(?P<block>\d+)\.'
         r'(?P<rest>.+)', 'block'),
        (r'backbone\.norm3\.(?P<rest>.+)', 'norm'),
        (r'head\.(?P<rest>(head|dist_head)\..+)', 'head'),
    ],
    dict(
        v1=dict(
            stem=(('0.', 'conv1.'), ('1.', 'conv2.')),
            downsample=(('conv.', 'conv.conv.'), ('bn.', 'conv.bn.')),
            block=_MMPRETRAIN_SCALES + V1_MLP,
            attn_block=_MMPRETRAIN_SCALES + V1_ATTENTION +
            attn_bias('token_mixer'),
            norm=same(''),
            head=same('head.', 'dist_head.'))))

#: Every supported source layout by its ``--source`` name.
SOURCES = {
    layout.name: layout
    for layout in (
        _official('official',
                  'official ImageNet classifier, a dict with a "model" key',
                  'classification', 224),
        TIMM,
        MMPRETRAIN,
        _official('official-det', 'official Mask R-CNN checkpoint (mmdet 2.x)',
                  'detection', 800),
        _official('official-seg',
                  'official Semantic FPN checkpoint (mmseg 0.x)',
                  'segmentation', 512),
    )
}


def is_mmeformer_layout(state_dict: Mapping) -> bool:
    """Whether any key of ``state_dict`` is of an mmeformer backbone."""
    return any(
        isinstance(key, str) and key.startswith(MMEFORMER_PREFIXES)
        for key in state_dict)


def detect_source(state_dict: Mapping) -> Optional[str]:
    """The ``--source`` whose names cover the most of ``state_dict``: one
    that renames some backbone tensor and recognises more keys than not;
    None if no source fits (e.g. the file is in mmeformer's layout)."""
    if is_mmeformer_layout(state_dict):
        return None
    best, best_count = None, 0
    for name, layout in SOURCES.items():
        mapping = map_keys(state_dict, layout)
        if not any(k.startswith(MMEFORMER_PREFIXES) for k in mapping.tensors):
            continue
        count = len(mapping.tensors) + len(mapping.dropped)
        if len(mapping.unknown) < count and count > best_count:
            best, best_count = name, count
    return best
