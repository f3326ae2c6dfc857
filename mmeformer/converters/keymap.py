"""Table-driven renaming of checkpoint keys into mmeformer's names: a
source layout locates each key (its part of the network and the rest of the
name, which a table of rules per family and part renames). Blocks are
renumbered by their order in the stage, which absorbs the parameter-free
modules some layouts interleave (the official ``Flat``, the mmpretrain
downsample at index 0)."""
import re
from collections import OrderedDict, defaultdict, namedtuple
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch


class Drop(str):
    """Target of a rule whose tensors are not carried over; the reason."""


#: Tensors mmeformer recomputes: its bias index buffers are not persistent.
DROP_INDEX = Drop('bias index buffer, recomputed from the token grid')
#: What a classifier keeps beside an attention-bias table.
INDEX_DROPPED = (('attention_bias_idxs', DROP_INDEX), )

#: ``(source, target[, transform of the tensor])``: a source ending with
#: ``'.'`` (or empty) renames a prefix, any other one exact name.
Rule = tuple

#: Where each part lives in mmeformer's classifier, detector and segmentor.
TARGET_PREFIXES = {
    'stem': 'backbone.stem.',
    'downsample': 'backbone.stages.{stage}.downsample.',
    'block': 'backbone.stages.{stage}.blocks.{block}.',
    'norm': 'backbone.norm.',
    'out_norm': 'backbone.out_norms.{stage}.',
    'head': 'head.',
    'passthrough': '',
}


def conv_bn(conv: str, bn: str, target: str) -> Tuple[Rule, Rule]:
    """Rules for a conv + BN pair becoming an mmcv ``ConvModule``."""
    return (f'{conv}.', f'{target}.conv.'), (f'{bn}.', f'{target}.bn.')


def same(*names: str) -> Tuple[Rule, ...]:
    """Rules that keep each of ``names``."""
    return tuple((name, name) for name in names)


def attn_bias(module: str,
              table: str = 'attention_biases',
              dropped: Sequence[tuple] = INDEX_DROPPED) -> Tuple[Rule, ...]:
    """Rules for the bias ``table`` of an attention and the tensors beside
    it that are ``dropped``: ``(name, Drop reason)`` pairs."""
    return ((f'{module}.{table}', f'{module}.attn_bias.table'), ) + tuple(
        (f'{module}.{name}', why) for name, why in dropped)


#: The MLP of the V1 4D blocks, and the V1 attention block but its layer
#: scales and bias, in the official, timm and mmpretrain names.
V1_MLP = conv_bn('mlp.fc1', 'mlp.norm1', 'mlp.fc1') + conv_bn(
    'mlp.fc2', 'mlp.norm2', 'mlp.fc2')
V1_ATTENTION = same('norm1.', 'norm2.', 'token_mixer.qkv.',
                    'token_mixer.proj.', 'mlp.fc1.', 'mlp.fc2.')

#: Where a source key belongs: a ``part`` of :data:`TARGET_PREFIXES`, the
#: ``rest`` of the name in it, and its ``stage`` and source ``block`` index
#: where the part has them.
Location = namedtuple('Location', 'part rest stage block', defaults=(-1, -1))


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
        patterns (Sequence[tuple[str, str]]): ``(regex, part)`` pairs,
            tried in order: the groups ``rest``, ``stage`` and ``block`` fill
            the :class:`Location`; a ``network`` index (the official list of
            stages and downsamples) gives the stage ``(network + 1) // 2``.
        tables (dict): ``tables[family][part]``: the rules of each part.
            Blocks with an attention (any ``token_mixer`` tensor) use the
            ``'attn_block'`` rules, the others ``'block'``.
    """

    name: str
    description: str
    task: str
    ref_size: int
    patterns: Sequence[Tuple[str, str]] = field(repr=False)
    tables: Mapping[str, Mapping[str, Sequence[Rule]]] = field(repr=False)

    def locate(self, key: str) -> Optional[Location]:
        """Where ``key`` belongs; None for keys of no known part."""
        for pattern, part in self.patterns:
            match = re.fullmatch(pattern, key)
            if match is None:
                continue
            groups = match.groupdict()
            stage, block, network = (
                int(groups.get(name) or -1)
                for name in ('stage', 'block', 'network'))
            if network >= 0:
                stage = (network + 1) // 2
            return Location(part, groups['rest'], stage, block)
        return None

    def detect_family(self, keys: Sequence[str]) -> str:
        """``'v2'`` if the V2 MLP's depthwise ``mid`` conv is present."""
        if len(self.tables) == 1:
            return next(iter(self.tables))
        mid = re.compile(r'(^|\.)mlp\.mid(_norm)?\.')
        return 'v2' if any(mid.search(key) for key in keys) else 'v1'


@dataclass
class KeyMapping:
    """A renamed state dict: the ``family`` (``'v1'`` / ``'v2'``), the
    ``tensors`` by mmeformer name and the source key (``origins``) of each,
    the source keys ``dropped`` (with why), ``unknown`` to the layout, and
    the ``clashes`` of keys that would share one name."""

    family: str
    tensors: 'OrderedDict[str, torch.Tensor]' = field(
        default_factory=OrderedDict)
    origins: Dict[str, str] = field(default_factory=dict)
    dropped: List[Tuple[str, str]] = field(default_factory=list)
    unknown: List[str] = field(default_factory=list)
    clashes: List[str] = field(default_factory=list)


def _apply_rules(rest: str, rules: Sequence[Rule]) -> Optional[tuple]:
    """``(target, transform)`` of the first rule matching ``rest``."""
    for source, target, *transform in rules:
        if source == '' or source.endswith('.'):
            if not rest.startswith(source):
                continue
            if not isinstance(target, Drop):
                target += rest[len(source):]
        elif rest != source:
            continue
        return target, (transform or [None])[0]
    return None


def map_keys(state_dict: Mapping[str, torch.Tensor],
             layout: SourceLayout) -> KeyMapping:
    """Rename the tensors of ``state_dict``, named as in ``layout``, into
    mmeformer's names; the keys that cannot be renamed are in the mapping
    for the caller to report with the other problems."""
    mapping = KeyMapping(layout.detect_family(list(state_dict)))
    located = {key: layout.locate(key) for key in state_dict}
    blocks, attends = defaultdict(set), defaultdict(bool)
    for loc in located.values():
        if loc is not None and loc.part == 'block':
            blocks[loc.stage].add(loc.block)
            attends[loc.stage,
                    loc.block] |= loc.rest.startswith('token_mixer.')
    ranks = {
        (stage, block): rank
        for stage, indices in blocks.items()
        for rank, block in enumerate(sorted(indices))
    }
    for key, loc in located.items():
        renamed = None
        if loc is not None:
            # Blocks with an attention take the 'attn_block' rules.
            rules = layout.tables[mapping.family].get(
                'attn_block' if attends[loc.stage, loc.block] else loc.part,
                ())
            renamed = _apply_rules(loc.rest, rules)
        if renamed is None:
            mapping.unknown.append(key)
            continue
        target, transform = renamed
        if isinstance(target, Drop):
            mapping.dropped.append((key, str(target)))
            continue
        target = TARGET_PREFIXES[loc.part].format(
            stage=loc.stage, block=ranks.get((loc.stage, loc.block))) + target
        if target in mapping.origins:
            mapping.clashes.append(
                f'{mapping.origins[target]} and {key} -> {target}')
            continue
        tensor = state_dict[key]
        mapping.tensors[target] = transform(tensor) if transform else tensor
        mapping.origins[target] = key
    return mapping
