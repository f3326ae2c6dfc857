"""Table-driven renaming of checkpoint keys into mmeformer's names.

A source layout splits each key into a *location* (which part of the network
it belongs to: stem, a stage's downsample, a block, the final norm, an
output norm, the classifier head, or a detector / segmentor part kept as it
is) and the *rest* of the name inside that part. A table of rules per
family and part then renames the rest. Blocks are renumbered by their order
within the stage, which absorbs the parameter-free modules some layouts
interleave (the official ``Flat`` before the first attention block, the
mmpretrain downsample at index 0).

A rule is ``(source, target)`` or ``(source, target, transform)``. A source
ending with ``'.'`` (or empty) renames a prefix, any other source one exact
name. A :class:`Drop` target leaves the tensor out, with the reason.
"""
import re
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import (Callable, Dict, List, Mapping, Optional, Sequence, Tuple,
                    Union)

import torch


class Drop(str):
    """Target of a rule whose tensors are not carried over; the reason."""


#: Tensors mmeformer recomputes: its bias index buffers are not persistent.
DROP_INDEX = Drop('bias index buffer, recomputed from the token grid')

Rule = Union[Tuple[str, Union[str, Drop]], Tuple[str, str, str]]

#: Tensor transforms rules may name.
TRANSFORMS: Dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    # Official V2 layer scales are (C, 1, 1); mmeformer stores them flat.
    'flatten': lambda tensor: tensor.reshape(-1),
}

#: Where each part lives in mmeformer's classifier, detector and segmentor.
TARGET_PREFIXES = {
    'stem': 'backbone.stem.',
    'downsample': 'backbone.stages.{stage}.downsample.',
    'block': 'backbone.stages.{stage}.blocks.{block}.',
    'attn_block': 'backbone.stages.{stage}.blocks.{block}.',
    'norm': 'backbone.norm.',
    'out_norm': 'backbone.out_norms.{stage}.',
    'head': 'head.',
    'passthrough': '',
}


def conv_bn(conv: str, bn: str, target: str) -> Tuple[Rule, Rule]:
    """Rules for a conv + BN pair becoming an mmcv ``ConvModule``."""
    return (f'{conv}.', f'{target}.conv.'), (f'{bn}.', f'{target}.bn.')


@dataclass(frozen=True)
class Location:
    """Where a source key belongs.

    Args:
        part (str): A key of :data:`TARGET_PREFIXES`.
        rest (str): The name inside the part, renamed by the rules.
        stage (int): Stage index, where the part has one. Defaults to -1.
        block (int): Block index in the source, for blocks. Defaults to -1.
    """

    part: str
    rest: str
    stage: int = -1
    block: int = -1


@dataclass(frozen=True)
class SourceLayout:
    """How one code base names the tensors of EfficientFormer models.

    Args:
        name (str): The ``--source`` name.
        description (str): One line for the command line help.
        task (str): ``'classification'``, ``'detection'`` or
            ``'segmentation'``: what the converted checkpoint is for.
        ref_size (int): Input size the source's attention biases were
            learned for.
        locate (Callable[[str], Location | None]): Location of a key; None
            for keys of no known part.
        tables (dict): ``tables[family][part]``: the rules of each part.
            Blocks with an attention (any ``token_mixer`` tensor) use the
            ``'attn_block'`` rules, the others ``'block'``.
    """

    name: str
    description: str
    task: str
    ref_size: int
    locate: Callable[[str], Optional[Location]]
    tables: Mapping[str, Mapping[str, Sequence[Rule]]] = field(repr=False)

    def detect_family(self, keys: Sequence[str]) -> str:
        """``'v2'`` if the V2 MLP's depthwise ``mid`` conv is present."""
        families = list(self.tables)
        if len(families) == 1:
            return families[0]
        return 'v2' if any(
            re.search(r'(^|\.)mlp\.mid(_norm)?\.', key)
            for key in keys) else 'v1'


@dataclass
class KeyMapping:
    """The result of renaming a state dict.

    Args:
        family (str): ``'v1'`` or ``'v2'``.
        tensors (OrderedDict): Renamed tensors by mmeformer name.
        origins (dict): Source key of every renamed tensor.
        dropped (list[tuple[str, str]]): Source keys left out, with why.
        unknown (list[str]): Source keys of no known part or without a
            rule: not of this layout.
        clashes (list[str]): Source keys that would share one name.
    """

    family: str
    tensors: 'OrderedDict[str, torch.Tensor]'
    origins: Dict[str, str]
    dropped: List[Tuple[str, str]]
    unknown: List[str]
    clashes: List[str]


def _apply_rules(rest: str, rules: Sequence[Rule]) -> Optional[tuple]:
    """``(target, transform)`` of the first rule matching ``rest``."""
    for rule in rules:
        source, target = rule[0], rule[1]
        transform = rule[2] if len(rule) > 2 else None
        is_prefix = source == '' or source.endswith('.')
        if is_prefix and rest.startswith(source):
            if isinstance(target, Drop):
                return target, None
            return target + rest[len(source):], transform
        if not is_prefix and rest == source:
            return target, transform
    return None


def _block_ranks(
    locations: Mapping[str, Location]
) -> Tuple[Dict[Tuple[int, int], int], Dict[Tuple[int, int], bool]]:
    """Block index by order within its stage, and which blocks attend."""
    raw = defaultdict(set)
    attends = defaultdict(bool)
    for loc in locations.values():
        if loc.part == 'block':
            raw[loc.stage].add(loc.block)
            attends[(loc.stage,
                     loc.block)] |= loc.rest.startswith('token_mixer.')
    ranks = {
        (stage, block): rank
        for stage, blocks in raw.items()
        for rank, block in enumerate(sorted(blocks))
    }
    return ranks, attends


def map_keys(state_dict: Mapping[str, torch.Tensor],
             layout: SourceLayout) -> KeyMapping:
    """Rename a source state dict into mmeformer's names.

    Args:
        state_dict (Mapping[str, Tensor]): The source tensors.
        layout (SourceLayout): How the source names them.

    Returns:
        KeyMapping: The renamed tensors, and the keys that could not be
        renamed, which the caller reports with the other problems.
    """
    family = layout.detect_family(list(state_dict))
    tables = layout.tables[family]
    locations = {}
    unknown = []
    for key in state_dict:
        loc = layout.locate(key)
        if loc is None:
            unknown.append(key)
        else:
            locations[key] = loc
    ranks, attends = _block_ranks(locations)

    tensors: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    origins: Dict[str, str] = {}
    dropped: List[Tuple[str, str]] = []
    clashes = []
    for key, loc in locations.items():
        part = loc.part
        if part == 'block' and attends[(loc.stage, loc.block)]:
            part = 'attn_block'
        renamed = _apply_rules(loc.rest, tables.get(part, ()))
        if renamed is None:
            unknown.append(key)
            continue
        target, transform = renamed
        if isinstance(target, Drop):
            dropped.append((key, str(target)))
            continue
        block = ranks.get((loc.stage, loc.block), -1)
        target = TARGET_PREFIXES[part].format(
            stage=loc.stage, block=block) + target
        if target in origins:
            clashes.append(f'{origins[target]} and {key} -> {target}')
            continue
        tensor = state_dict[key]
        tensors[target] = TRANSFORMS[transform](
            tensor) if transform else tensor
        origins[target] = key

    return KeyMapping(family, tensors, origins, dropped, unknown, clashes)
