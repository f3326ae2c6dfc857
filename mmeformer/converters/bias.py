"""Moving attention-bias tables to another reference grid.

A table holds one learned value per head and per token offset
``(|dy|, |dx|)`` of the reference grid, as ``(num_heads, h * w)``. A model
built for another reference input (``attn_ref_size``, e.g. 800 for
detection) has tables for its own grid, so a classifier's tables (7x7 offsets
at 224) do not fit it. Two ways to fill them:

- ``'zero'`` (the default): start from zero, which is what the official
  detection and segmentation models did. Their ImageNet biases were
  discarded (the maintainers confirmed it in snap-research/EfficientFormer
  issue #19), so the published dense results come from zero-initialised
  tables, and this choice reproduces their starting point exactly.
- ``'resize'``: resample each table as an image over the offsets, bicubic
  with aligned corners, so offset 0 (a token and itself) keeps its value and
  the largest offset maps to the largest. This keeps ImageNet's preference
  for near tokens, stretched to the larger grid, like the relative-position
  tables of Swin-style models are resized for new window sizes; no
  published EfficientFormer result was obtained this way.
"""
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple

import torch
import torch.nn.functional as F

from mmeformer.utils import Grid
from .errors import ConversionError, describe_problems

#: Ways of filling a table whose reference grid changes; the first is the
#: default.
BIAS_MODES = ('zero', 'resize')


def check_bias_mode(mode: str) -> None:
    """Raise :class:`ConversionError` unless ``mode`` is in
    :data:`BIAS_MODES`."""
    if mode not in BIAS_MODES:
        raise ConversionError(
            f'Unknown bias mode {mode!r}; choose one of {list(BIAS_MODES)}.')


def resize_table(table: torch.Tensor, src_grid: Grid,
                 dst_grid: Grid) -> torch.Tensor:
    """Resample a ``(heads, h * w)`` offset table to another grid.

    Args:
        table (Tensor): The table, its columns the offsets of ``src_grid``
            in row-major order.
        src_grid (tuple[int, int]): ``(h, w)`` of the table.
        dst_grid (tuple[int, int]): ``(h, w)`` wanted.

    Returns:
        Tensor: The ``(heads, dst_h * dst_w)`` table, in ``table``'s dtype.
    """
    heads = table.shape[0]
    image = table.reshape(1, heads, *src_grid).float()
    resized = F.interpolate(
        image, size=dst_grid, mode='bicubic', align_corners=True)
    return resized.reshape(heads, -1).to(table.dtype)


def adapt_bias_tables(tensors: 'OrderedDict[str, torch.Tensor]',
                      expected: Mapping[str, tuple], src_grids: Mapping[str,
                                                                        Grid],
                      dst_grids: Mapping[str, Grid], mode: str) -> List[str]:
    """Fit every bias table of ``tensors`` to the target grid, in place.

    Args:
        tensors (OrderedDict[str, Tensor]): Converted tensors; the tables
            are replaced.
        expected (Mapping[str, tuple]): Shapes the target model loads.
        src_grids (Mapping[str, tuple]): Grid of each table in the source.
        dst_grids (Mapping[str, tuple]): Grid of each table in the target.
        mode (str): One of :data:`BIAS_MODES`.

    Returns:
        list[str]: What was done, one line per kind of change.

    Raises:
        ConversionError: If ``mode`` is unknown or a source table does not
            have the shape of its own reference grid.
    """
    check_bias_mode(mode)
    changed: Dict[Tuple[Grid, Grid], int] = {}
    kept: Dict[Grid, int] = {}
    bad = []
    for name, dst_grid in dst_grids.items():
        if name not in tensors or name not in expected:
            continue
        table, src_grid = tensors[name], src_grids[name]
        heads = expected[name][0]
        if tuple(table.shape) != (heads, src_grid[0] * src_grid[1]):
            bad.append(f'{name}: {tuple(table.shape)}, expected '
                       f'{(heads, src_grid[0] * src_grid[1])} for the '
                       f'{src_grid[0]}x{src_grid[1]} grid of the source')
            continue
        if src_grid == dst_grid:
            kept[src_grid] = kept.get(src_grid, 0) + 1
            continue
        if mode == 'zero':
            tensors[name] = table.new_zeros(expected[name])
        else:
            tensors[name] = resize_table(table, src_grid, dst_grid)
        key = (src_grid, dst_grid)
        changed[key] = changed.get(key, 0) + 1
    if bad:
        raise ConversionError(
            'Attention-bias tables do not fit the source\'s reference grid; '
            'the checkpoint is not of the chosen source or variant.\n' +
            describe_problems([('shape mismatches', bad)]))
    verb = 'zero-initialised' if mode == 'zero' else 'resized'
    lines = [
        f'{count} kept ({g[0]}x{g[1]} offsets)'
        for g, count in sorted(kept.items())
    ]
    lines += [
        f'{count} {verb} ({s[0]}x{s[1]} -> {d[0]}x{d[1]} offsets)'
        for (s, d), count in sorted(changed.items())
    ]
    return lines
