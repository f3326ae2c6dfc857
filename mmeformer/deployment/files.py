"""Write models to files atomically, check the sizes they are exported at."""
import os.path as osp
from typing import Sequence, Tuple

from mmeformer.runtime import SetupError
from mmeformer.utils import atomic_output

__all__ = ['MIN_SIZE', 'check_shape', 'check_output_path', 'atomic_output']

#: Smallest input side: the backbones downsample by 32.
MIN_SIZE = 32


def check_shape(shape: Sequence[int]) -> Tuple[int, int]:
    """An export size ``(H, W)`` from one or two ints.

    Raises:
        SetupError: If a side is under :data:`MIN_SIZE` pixels.
    """
    if len(shape) not in (1, 2):
        raise SetupError(f'--shape takes H or H W, got {list(shape)}')
    height, width = (shape[0], shape[0]) if len(shape) == 1 else shape
    if min(height, width) < MIN_SIZE:
        raise SetupError(
            f'input size {height}x{width} is too small: the backbones '
            f'downsample by 32, so both sides need at least {MIN_SIZE} '
            'pixels')
    return int(height), int(width)


def check_output_path(path: str) -> str:
    """The absolute output path, refused before any work if its folder does
    not exist.

    Raises:
        SetupError: If the parent folder is missing or is not a folder.
    """
    path = osp.abspath(path)
    parent = osp.dirname(path)
    if not osp.isdir(parent):
        raise SetupError(
            f'cannot write {path}: the folder {parent} does not exist; '
            'create it first (mkdir -p)')
    return path
