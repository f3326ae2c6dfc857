"""Which EfficientFormer variant a checkpoint holds: the variants are those
of the backbones' ``arch_zoo`` tables, each with its own stage widths."""
import re
from dataclasses import dataclass
from typing import List, Mapping, Optional, Type

import torch

from mmeformer.models.backbones import (BaseEfficientFormer, EfficientFormer,
                                        EfficientFormerV2)
from .errors import ConversionError

#: Backbone class and model-name stem of each family.
FAMILIES = {
    'v1': (EfficientFormer, 'efficientformer'),
    'v2': (EfficientFormerV2, 'efficientformerv2'),
}


@dataclass(frozen=True)
class Variant:
    """One published model: its ``family`` (``'v1'`` or ``'v2'``) and its
    ``arch`` in the backbone's ``arch_zoo``, e.g. ``'l1'``."""

    family: str
    arch: str

    @property
    def backbone_cls(self) -> Type[BaseEfficientFormer]:
        return FAMILIES[self.family][0]

    @property
    def name(self) -> str:
        """Model name used in file names, e.g. ``efficientformerv2_s0``."""
        return f'{FAMILIES[self.family][1]}_{self.arch}'

    @property
    def channels(self) -> List[int]:
        """The output channels of the four stages."""
        return list(self.backbone_cls.arch_zoo[self.arch]['channels'])

    def __str__(self) -> str:
        return self.name


def all_variants() -> List[Variant]:
    """Every variant of every family."""
    return [
        Variant(family, arch) for family, (cls, _) in FAMILIES.items()
        for arch in cls.arch_zoo
    ]


def parse_variant(name: str) -> Variant:
    """The variant called ``name``: an arch name (``l1``, ``s0``, ...) or a
    model name (``efficientformer_l1``, ``efficientformerv2-s0``, ...), in
    any case.

    Raises:
        ConversionError: If no variant has that name.
    """
    wanted = name.strip().lower().replace('-', '_')
    for variant in all_variants():
        if wanted in (variant.arch, variant.name):
            return variant
    known = ', '.join(f'{v.arch} ({v.name})' for v in all_variants())
    raise ConversionError(
        f'Unknown variant {name!r}; known variants: {known}.')


def _stage_width(state_dict: Mapping[str, torch.Tensor],
                 stage: int) -> Optional[int]:
    """Output channels of ``stage``: of the stem's last or the downsample
    convolution, else of any layer scale of the stage."""
    probe = ('backbone.stem.conv2.conv.weight' if stage == 0 else
             f'backbone.stages.{stage}.downsample.conv.conv.weight')
    if probe in state_dict:
        return int(state_dict[probe].shape[0])
    scale = re.compile(rf'backbone\.stages\.{stage}\.blocks\.\d+\.ls2\.weight')
    return next((int(value.numel())
                 for key, value in state_dict.items() if scale.fullmatch(key)),
                None)


def detect_variant(state_dict: Mapping[str, torch.Tensor],
                   family: str,
                   named: Optional[Variant] = None) -> Variant:
    """The variant of ``family`` (``'v1'`` or ``'v2'``) whose stage widths
    the tensors of ``state_dict``, in mmeformer's names, have; it must be
    ``named`` if that is given.

    Raises:
        ConversionError: If the widths cannot be read, match no variant, or
            do not match ``named``.
    """
    widths = [
        _stage_width(state_dict, stage)
        for stage in range(BaseEfficientFormer.num_stages)
    ]
    family_name = FAMILIES[family][0].__name__
    if None in widths:
        missing = [i for i, width in enumerate(widths) if width is None]
        raise ConversionError(
            f'Cannot tell which {family_name} variant this is: no tensor '
            f'gives the width of stage(s) {missing} (neither the stem or '
            'downsample convolution nor any layer scale of those stages is '
            'in the checkpoint).')
    found = [
        v for v in all_variants()
        if v.family == family and v.channels == widths
    ]
    if named is not None:
        if found and found[0] == named:
            return named
        what = found[0].name if found else 'no known variant'
        raise ConversionError(
            f'The checkpoint does not hold {named.name}: its stage widths are '
            f'{widths} ({family_name}, {what}), while {named.name} '
            f'has {named.channels}. Leave out the variant to have it '
            'detected, or pick the matching file.')
    if not found:
        known = '; '.join(f'{v.arch}: {v.channels}' for v in all_variants()
                          if v.family == family)
        raise ConversionError(
            f'The checkpoint\'s stage widths {widths} match no '
            f'{family_name} variant (known widths: {known}).')
    return found[0]
