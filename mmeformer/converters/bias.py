"""Moving attention-bias tables, ``(num_heads, h * w)`` values for the
token offsets ``(|dy|, |dx|)`` of a reference grid, to the grid of another
``attn_ref_size``: from zero (``'zero'``, as the official dense models) or
resampled bicubically (``'resize'``); see ``docs/converters.md``."""
from collections import Counter
from typing import Dict, List, Mapping

import torch
import torch.nn.functional as F

from mmeformer.utils import Grid, describe_problems
from .errors import ConversionError

GridMap = Mapping[str, Grid]

#: Ways of filling a table whose reference grid changes; the first is default.
BIAS_MODES = ('zero', 'resize')


def check_bias_mode(mode: str) -> None:
    """Refuse a ``mode`` not in :data:`BIAS_MODES`."""
    if mode not in BIAS_MODES:
        raise ConversionError(
            f'Unknown bias mode {mode!r}; choose one of {list(BIAS_MODES)}.')


def resize_table(table: torch.Tensor, src_grid: Grid,
                 dst_grid: Grid) -> torch.Tensor:
    """Resample a ``(heads, h * w)`` table, its columns the offsets of
    ``src_grid`` in row-major order, to ``dst_grid``, in ``table``'s
    dtype."""
    # Aligned corners: offset 0 and the largest offset keep their values.
    resized = F.interpolate(
        table.reshape(1, -1, *src_grid).float(),
        size=dst_grid,
        mode='bicubic',
        align_corners=True)
    return resized.reshape(table.shape[0], -1).to(table.dtype)


def adapt_bias_tables(tensors: Dict[str, torch.Tensor],
                      expected: Mapping[str, tuple], src_grids: GridMap,
                      dst_grids: GridMap, mode: str) -> List[str]:
    """Fit every bias table of ``tensors`` to the target grid, in place.

    ``expected`` holds the shapes the target model loads, ``src_grids`` and
    ``dst_grids`` the grid of each table in the source and in the target;
    ``mode`` is one of :data:`BIAS_MODES`. Returns what was done, one line
    per kind of change.

    Raises:
        ConversionError: If ``mode`` is unknown or a source table does not
            have the shape of its own reference grid.
    """
    check_bias_mode(mode)
    kept, changed, bad = Counter(), Counter(), []
    for name, dst in dst_grids.items():
        if name not in tensors or name not in expected:
            continue
        table, src = tensors[name], src_grids[name]
        shape = (expected[name][0], src[0] * src[1])
        if tuple(table.shape) != shape:
            bad.append(f'{name}: {tuple(table.shape)}, expected {shape} for '
                       f'the {src[0]}x{src[1]} grid of the source')
        elif src == dst:
            kept[src] += 1
        else:
            tensors[name] = table.new_zeros(expected[name]) if (
                mode == 'zero') else resize_table(table, src, dst)
            changed[src, dst] += 1
    if bad:
        raise ConversionError(
            'Attention-bias tables do not fit the source\'s reference grid; '
            'the checkpoint is not of the chosen source or variant.\n' +
            describe_problems([('shape mismatches', bad)]))
    verb = 'zero-initialised' if mode == 'zero' else 'resized'
    return [
        f'{n} kept ({g[0]}x{g[1]} offsets)' for g, n in sorted(kept.items())
    ] + [
        f'{n} {verb} ({s[0]}x{s[1]} -> {d[0]}x{d[1]} offsets)'
        for (s, d), n in sorted(changed.items())
    ]
