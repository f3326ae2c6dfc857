"""The blocks a latency table measures: which a V2 search space holds, which
the published V1 networks hold, which an arch uses, and each one built alone
at the feature-map size where it runs."""
import math
from typing import List, NamedTuple, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmpretrain.models.necks import GlobalAveragePooling

from mmeformer.models import (EfficientFormer, EfficientFormerClsHead,
                              EfficientFormerV2)
from mmeformer.models.backbones import EfficientFormerV2Space
from mmeformer.models.backbones.efficientformer import TokenLayerNorm2d
from mmeformer.models.layers import Stem

__all__ = [
    'Block', 'CLASSIFIER_SIZES', 'NUM_CLASSES', 'V1_ARCHS', 'arch_family',
    'space_blocks', 'v1_blocks', 'arch_blocks', 'block_input_shape',
    'build_block', 'build_classifier', 'build_network', 'ClassifierTail',
    'parse_key'
]

#: Input sizes at which a table includes the classifier's norm and head.
CLASSIFIER_SIZES = ((224, 224), )

#: Classes of the classifier head (ImageNet).
NUM_CLASSES = 1000

#: The published V1 networks, the only V1 archs a table predicts.
V1_ARCHS = tuple(EfficientFormer.arch_zoo)

#: Backbone of each family, which builds its blocks.
_BACKBONES = dict(v1=EfficientFormer, v2=EfficientFormerV2)

#: The kind of each family's blocks without attention: V1's Meta4D pooling
#: blocks, V2's FFN blocks.
_PLAIN_KINDS = dict(v1='pool', v2='ffn')

#: Block kinds of each family.
_KINDS = {
    family: ('stem', 'down', plain, 'attn', 'head')
    for family, plain in _PLAIN_KINDS.items()
}

#: Key prefix of each family.
_PREFIXES = dict(v1='v1.', v2='')


class Block(NamedTuple):
    """One configuration of one building block, the unit of a table.

    Attributes:
        kind (str): ``'stem'``, ``'down'`` (the downsample opening
            ``stage``), ``'ffn'`` (a V2 block without attention),
            ``'pool'`` (a V1 Meta4D pooling block), ``'attn'`` (a V2 block
            with an ``Attention4D`` and its FFN, or a V1 Meta3D block) or
            ``'head'`` (the classifier's final norm, pooling and both
            linear heads).
        stage (int): The stage it belongs to (the stem to 0, the head to 3).
        channels (int): Its output channels (the stage's width).
        in_channels (int): Its input channels; 3 for the stem.
        mlp_ratio (float): MLP ratio of an ``'ffn'``, ``'pool'`` or
            ``'attn'`` block, else 0.
        family (str): ``'v2'`` (:class:`EfficientFormerV2`) or ``'v1'``
            (:class:`EfficientFormer`), whose backbone builds it.
            Defaults to ``'v2'``.
    """
    kind: str
    stage: int
    channels: int
    in_channels: int
    mlp_ratio: float = 0.
    family: str = 'v2'

    @property
    def key(self) -> str:
        """Its name in a table, e.g. ``'ffn2:96x3'``, ``'down3:144-288'``,
        ``'v1.pool2:224x4'`` (V1 keys start with ``'v1.'``)."""
        prefix = _PREFIXES[self.family]
        if self.kind in ('stem', 'head'):
            return f'{prefix}{self.kind}:{self.channels}'
        if self.kind == 'down':
            return (f'{prefix}down{self.stage}:{self.in_channels}-'
                    f'{self.channels}')
        return (f'{prefix}{self.kind}{self.stage}:{self.channels}x'
                f'{self.mlp_ratio:g}')

    def describe(self) -> str:
        """The block in words, for messages."""
        family = 'V1 ' if self.family == 'v1' else ''
        if self.kind == 'stem':
            return f'the {family}stem at width {self.channels}'
        if self.kind == 'head':
            return f'the {family}classifier head at width {self.channels}'
        if self.kind == 'down':
            return (f'the {family}downsample into stage {self.stage} from '
                    f'{self.in_channels} to {self.channels} channels')
        what = dict(
            ffn='FFN block',
            pool='pooling block (Meta4D)',
            attn='attention block (Meta3D)'
            if self.family == 'v1' else 'attention block')[self.kind]
        return (f'the {family}{what} of stage {self.stage} at width '
                f'{self.channels} with MLP ratio {self.mlp_ratio:g}')


def _ffn(stage: int,
         width: int,
         ratio: float,
         attention: bool,
         family: str = 'v2') -> Block:
    """A block of a stage: with attention, or the family's other kind."""
    kind = 'attn' if attention else _PLAIN_KINDS[family]
    return Block(kind, stage, width, width, float(ratio), family)


def arch_family(arch: Union[str, dict]) -> str:
    """``'v1'`` for a published V1 name (:data:`V1_ARCHS`, any case),
    ``'v2'`` for anything else (a V2 name or arch dict)."""
    if isinstance(arch, str) and arch.lower() in V1_ARCHS:
        return 'v1'
    return 'v2'


def space_blocks(space: EfficientFormerV2Space,
                 with_head: bool) -> List[Block]:
    """Every block configuration an arch of ``space`` can hold, once each.

    Args:
        space (EfficientFormerV2Space): The search space.
        with_head (bool): Include the classifier head at every last-stage
            width.

    Returns:
        list[Block]: The stem per stage-0 width; per stage, the FFN block
        at every width and MLP ratio; in stages 2 and 3 (if the space
        allows attention there) the attention block at every width and
        ratio; the downsample between every pair of adjacent stages'
        widths; the heads.
    """
    blocks = [Block('stem', 0, w, 3) for w in space.widths[0]]
    for stage, widths in enumerate(space.widths):
        if stage > 0:
            blocks += [
                Block('down', stage, w, w_in)
                for w_in in space.widths[stage - 1] for w in widths
            ]
        attention = stage >= 2 and space.max_attn_blocks[stage - 2] > 0
        for w in widths:
            for ratio in space.mlp_ratios:
                blocks.append(_ffn(stage, w, ratio, False))
                if attention:
                    blocks.append(_ffn(stage, w, ratio, True))
    if with_head:
        blocks += [Block('head', 3, w, w) for w in space.widths[-1]]
    return blocks


def v1_blocks(with_head: bool) -> List[Block]:
    """Every block configuration of the published V1 networks, once each.

    Args:
        with_head (bool): Include the classifier head of each network.

    Returns:
        list[Block]: The blocks of :data:`V1_ARCHS` in network order, each
        configuration at its first place.
    """
    blocks = {}
    for name in V1_ARCHS:
        blocks.update((b.key, b) for b in arch_blocks(name, with_head))
    return list(blocks.values())


def arch_blocks(arch: Union[str, dict], with_head: bool) -> List[Block]:
    """The blocks of a network, in network order.

    Args:
        arch (str | dict): A published V1 name (:data:`V1_ARCHS`), or an
            :class:`EfficientFormerV2` arch dict as
            :meth:`EfficientFormerV2Space.check` returns it
            (``num_attn_blocks`` per stage 2 and 3).
        with_head (bool): End with the classifier head.

    Returns:
        list[Block]: One entry per module the network runs.
    """
    family = arch_family(arch)
    if family == 'v1':
        arch = EfficientFormer.parse_arch(arch)
        counts = [0, 0, 0, arch['num_attn_blocks']]
        ratios = [[EfficientFormer.mlp_ratio] * d for d in arch['depths']]
    else:
        counts = EfficientFormerV2.attn_blocks_per_stage(arch)
        ratios = arch['mlp_ratios']
    channels = arch['channels']
    blocks = [Block('stem', 0, channels[0], 3, family=family)]
    for stage, depth in enumerate(arch['depths']):
        if stage > 0:
            blocks.append(
                Block(
                    'down',
                    stage,
                    channels[stage],
                    channels[stage - 1],
                    family=family))
        first_attn = depth - counts[stage]
        blocks += [
            _ffn(stage, channels[stage], ratio, index >= first_attn, family)
            for index, ratio in enumerate(ratios[stage])
        ]
    if with_head:
        blocks.append(
            Block('head', 3, channels[-1], channels[-1], family=family))
    return blocks


def _grid(input_size: Sequence[int], stage: int) -> Tuple[int, int]:
    """Token grid of ``stage`` (stride ``2 ** (stage + 2)``) for an input
    of ``input_size``; ``stage`` -1 is the stem's first conv output."""
    return tuple(math.ceil(s / 2**(stage + 2)) for s in input_size)


def block_input_shape(block: Block,
                      input_size: Sequence[int]) -> Tuple[int, ...]:
    """The ``(1, C, H, W)`` input of ``block`` in a network fed
    ``input_size`` images."""
    if block.kind == 'stem':
        return (1, 3, *input_size)
    stage = block.stage - 1 if block.kind == 'down' else block.stage
    return (1, block.in_channels, *_grid(input_size, stage))


class ClassifierTail(nn.Module):
    """The classifier after the backbone's last block: the final norm
    (V2's BatchNorm, V1's LayerNorm over channels), global average pooling
    and :class:`EfficientFormerClsHead`.

    Args:
        channels (int): Channels of the last stage.
        num_classes (int): Classes. Defaults to :data:`NUM_CLASSES`.
        family (str): ``'v2'`` or ``'v1'``, whose final norm it has.
            Defaults to ``'v2'``.
    """

    def __init__(self,
                 channels: int,
                 num_classes: int = NUM_CLASSES,
                 family: str = 'v2') -> None:
        super().__init__()
        if family == 'v1':
            self.norm = TokenLayerNorm2d(channels)
        else:
            self.norm = build_norm_layer(dict(type='BN'), channels)[1]
        self.neck = GlobalAveragePooling()
        self.head = EfficientFormerClsHead(num_classes, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.neck((self.norm(x), )))


def build_block(block: Block, input_size: Sequence[int]) -> nn.Module:
    """Build ``block`` alone, in eval mode, as the network of an
    ``input_size`` input builds it (attention biases for that size): by its
    family's backbone, :meth:`EfficientFormerV2.build_block` or
    :meth:`EfficientFormer.build_block` and their ``build_downsample``.

    Args:
        block (Block): The block.
        input_size (Sequence[int]): ``(H, W)`` of the network's input.

    Returns:
        nn.Module: Maps a :func:`block_input_shape` tensor to the block's
        output.
    """
    backbone = _BACKBONES[block.family]
    if block.kind == 'stem':
        module = Stem(3, block.channels, backbone.stem_act_cfg)
    elif block.kind == 'down':
        module = backbone.build_downsample(block.stage, block.in_channels,
                                           block.channels,
                                           _grid(input_size, block.stage - 1))
    elif block.kind == 'head':
        module = ClassifierTail(block.channels, family=block.family)
    else:
        module = backbone.build_block(block.stage, block.channels,
                                      block.mlp_ratio, block.kind == 'attn',
                                      _grid(input_size, block.stage))
    return module.eval()


def build_classifier(backbone: str,
                     arch: Union[str, dict],
                     input_size: Sequence[int],
                     num_classes: int = NUM_CLASSES) -> nn.Module:
    """An EfficientFormer ImageNet classifier, in eval mode: MMPretrain's
    ``ImageClassifier`` with the backbone's final norm, global average
    pooling and :class:`EfficientFormerClsHead`, as the ImageNet configs.

    Args:
        backbone (str): ``'EfficientFormer'`` (V1) or
            ``'EfficientFormerV2'``.
        arch (str | dict): The backbone's arch.
        input_size (Sequence[int]): ``(H, W)``; the attention biases are
            made for it.
        num_classes (int): Classes. Defaults to :data:`NUM_CLASSES`.

    Returns:
        nn.Module: The classifier.
    """
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    backbone_cls = MODELS.get(f'mmeformer.{backbone}')
    channels = backbone_cls.parse_arch(arch)['channels'][-1]
    return MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(
                type=f'mmeformer.{backbone}',
                arch=arch,
                final_norm=True,
                attn_ref_size=tuple(input_size)),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(
                type='mmeformer.EfficientFormerClsHead',
                num_classes=num_classes,
                in_channels=channels))).eval()


def build_network(arch: Union[str, dict], input_size: Sequence[int],
                  with_head: bool) -> nn.Module:
    """The whole network whose latency a table predicts, in eval mode.

    Args:
        arch (str | dict): A published V1 name (:data:`V1_ARCHS`) or an
            :class:`EfficientFormerV2` arch.
        input_size (Sequence[int]): ``(H, W)``; the attention biases are
            made for it.
        with_head (bool): The ImageNet classifier
            (:func:`build_classifier`), or the dense backbone with its four
            outputs (without the output norms of the V1 dense models).

    Returns:
        nn.Module: The classifier or the backbone.
    """
    backbone = _BACKBONES[arch_family(arch)]
    if with_head:
        return build_classifier(backbone.__name__, arch, input_size)
    return backbone(
        arch, out_indices=(0, 1, 2, 3),
        attn_ref_size=tuple(input_size)).eval()


def parse_key(key: str) -> Block:
    """The :class:`Block` of a table key (inverse of :attr:`Block.key`).

    Raises:
        ValueError: If ``key`` is not a block key.
    """
    try:
        family = 'v1' if key.startswith(_PREFIXES['v1']) else 'v2'
        name, value = key[len(_PREFIXES[family]):].split(':')
        kind = name.rstrip('0123456789')
        if kind not in _KINDS[family]:
            raise ValueError
        if kind in ('stem', 'head'):
            width = int(value)
            return Block(
                kind,
                0 if kind == 'stem' else 3,
                width,
                3 if kind == 'stem' else width,
                family=family)
        stage = int(name[len(kind):])
        if kind == 'down':
            w_in, width = map(int, value.split('-'))
            return Block(kind, stage, width, w_in, family=family)
        width, ratio = value.split('x')
        return _ffn(stage, int(width), float(ratio), kind == 'attn', family)
    except ValueError:
        raise ValueError(f'{key!r} is not a latency-table block key') from None
