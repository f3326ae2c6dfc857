"""Reading image sizes given as ``800``, ``'800'``, ``'800x1333'`` or a pair.

Configs and command lines spell sizes differently; the backbones'
``attn_ref_size`` and the converter's ``--attn-ref-size`` accept the same
spellings through :func:`parse_size`.
"""
from typing import Sequence, Tuple, Union

__all__ = ['Grid', 'Size', 'parse_size']

#: A size or a token grid as ``(height, width)``.
Grid = Tuple[int, int]
#: The spellings :func:`parse_size` reads.
Size = Union[int, str, Sequence[int]]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_size(value: Size, name: str = 'size') -> Grid:
    """Read a size as ``(height, width)``.

    Args:
        value (int | str | Sequence[int]): One size for both sides (``800``,
            ``'800'``), ``'HxW'`` or ``'H,W'`` (``'800x1333'``), or an
            ``(h, w)`` pair.
        name (str): What the value is, for the error message.
            Defaults to 'size'.

    Returns:
        tuple[int, int]: ``(h, w)``.

    Raises:
        ValueError: If the value is none of these spellings.
    """
    if isinstance(value, str):
        parts = value.lower().replace(',', 'x').split('x')
        if 1 <= len(parts) <= 2 and all(p.strip().isdigit() for p in parts):
            value = [int(p) for p in parts] * (3 - len(parts))
    elif _is_int(value):
        value = (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(
            _is_int(v) for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(
        f'{name} must be one size (800), height x width (\'800x1333\') or '
        f'an (h, w) pair of ints, got {value!r}')
