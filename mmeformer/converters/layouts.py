"""Which layout a state dict is in: mmeformer's own or a convertible one.

Used to say what to do with a file that is loaded or converted as something
it is not: an mmeformer checkpoint needs no conversion, and a file of a
known source needs the converter with the right ``--source``.
"""
from typing import Mapping, Optional

from .keymaps import SOURCES, map_keys

__all__ = ['is_mmeformer_layout', 'detect_source']

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
    """The ``--source`` whose names cover the most of ``state_dict``.

    A source qualifies when it renames some backbone tensor and fewer keys
    are foreign to it than it recognises.

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
