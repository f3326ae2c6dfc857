"""Key layouts of the code bases checkpoints are converted from, and which
layout a state dict is in: mmeformer's own (it needs no conversion) or the
``--source`` whose names it has."""
from typing import Mapping, Optional

from .base import KeyMapping, Location, SourceLayout, map_keys
from .mmpretrain import MMPRETRAIN
from .official import OFFICIAL, OFFICIAL_DET, OFFICIAL_SEG
from .timm import TIMM

#: Every supported source layout by its ``--source`` name.
SOURCES = {
    layout.name: layout
    for layout in (OFFICIAL, TIMM, MMPRETRAIN, OFFICIAL_DET, OFFICIAL_SEG)
}

#: Key prefixes only mmeformer's backbones produce.
MMEFORMER_PREFIXES = ('backbone.stem.', 'backbone.stages.')


def is_mmeformer_layout(state_dict: Mapping) -> bool:
    """Whether the keys are those of an mmeformer model.

    Args:
        state_dict (Mapping): Tensors by name.

    Returns:
        bool: True if any key is of an mmeformer backbone.
    """
    return any(
        isinstance(key, str) and key.startswith(MMEFORMER_PREFIXES)
        for key in state_dict)


def detect_source(state_dict: Mapping) -> Optional[str]:
    """The ``--source`` whose names cover the most of ``state_dict``: one
    that renames some backbone tensor and recognises more keys than not.

    Args:
        state_dict (Mapping): Tensors by name.

    Returns:
        str | None: A key of :data:`~.keymaps.SOURCES`, or None if no
        source fits (e.g. the file is in mmeformer's layout already).
    """
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


__all__ = [
    'KeyMapping', 'Location', 'SourceLayout', 'map_keys', 'SOURCES',
    'is_mmeformer_layout', 'detect_source'
]
