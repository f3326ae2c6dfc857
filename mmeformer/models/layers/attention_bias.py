"""Learned relative-position attention bias usable at any token grid."""
import math
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.utils import to_2tuple

from mmeformer.utils import Grid


def to_grid(size: Union[int, Sequence[int]]) -> Grid:
    """Turn an int or an ``(h, w)`` pair into an ``(h, w)`` tuple of ints."""
    grid = tuple(int(s) for s in to_2tuple(size))
    if len(grid) != 2:
        raise ValueError(f'expected an int or an (h, w) pair, got {grid}')
    return grid


try:
    from torch.compiler import is_compiling
except ImportError:  # torch < 2.3
    from torch._dynamo import is_compiling


def is_exporting() -> bool:
    """Whether the current forward is traced, scripted or compiled."""
    return (torch.jit.is_tracing() or torch.jit.is_scripting()
            or is_compiling())


_constant_in_traces: ContextVar[bool] = ContextVar(
    'attention_bias_constant_in_traces', default=False)


@contextmanager
def constant_attention_bias() -> Iterator[None]:
    """Trace attention biases at fixed sizes, for fixed-shape exports.

    Inside this context a traced :class:`AttentionBias` records its bias for
    the traced grids only: the small per-offset table, gathered with two
    constant offset indices and, off the reference grids, resized with
    constant taps and weights (:func:`resize_bicubic_traced`). Every input
    of that computation is a constant, so ONNX Runtime and OpenVINO fold it
    into one constant when they load the file and nothing is resized at run
    time, while the file holds the table (kilobytes) instead of the gathered
    ``(num_heads, Nq, Nk)`` bias (up to hundreds of megabytes at dense
    sizes). The graph is valid for the traced input size only. Outside it a
    trace resizes the bias inside the graph for whatever grid the input has.

    Example:
        >>> with constant_attention_bias():
        ...     torch.onnx.export(model, x, 'static.onnx', dynamo=False)
    """
    token = _constant_in_traces.set(True)
    try:
        yield
    finally:
        _constant_in_traces.reset(token)


# Coefficient of torch's bicubic convolution kernel (Keys' ``a``).
_CUBIC_A = -0.75


def _cubic_tap_weights(t: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Weights of the four taps at ``floor(x) - 1 .. floor(x) + 2`` for the
    fractional parts ``t``, written as torch's bicubic kernel writes them."""
    a = _CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return far(t + 1), near(t), near(1 - t), far(2 - t)


def _resize_axis_traced(matrix: torch.Tensor, dim: int,
                        size: Union[int, torch.Tensor]) -> torch.Tensor:
    """Bicubic resize of one axis with four gathers.

    Source positions, tap indices and weights are computed from ``size``
    with tensor ops, so a traced graph recomputes them for every input.
    """
    in_size = matrix.shape[dim]
    # torch: scale = in / out and src = scale * (dst + 0.5) - 0.5, in the
    # input's precision, unclamped for cubic; taps are clamped to the edge.
    # (``int / tensor`` would multiply by the reciprocal and round apart.)
    out_size = size.to(matrix.dtype) if isinstance(
        size, torch.Tensor) else torch.full((), size, dtype=matrix.dtype)
    scale = torch.full((), in_size, dtype=matrix.dtype) / out_size
    # torch's kernel rounds src once (a fused multiply-add); so does the
    # float64 product rounded to the input's precision. Rounding twice
    # would move float32 sources by up to 1e-4 pixel at dense sizes.
    src = ((torch.arange(size, dtype=torch.float64) + 0.5) * scale.double() -
           0.5).to(matrix.dtype)
    start = src.floor()
    weights = _cubic_tap_weights(src - start)
    shape = [1] * matrix.dim()
    shape[dim] = -1
    out = None
    for offset, weight in zip(range(-1, 3), weights):
        # Clamped as floats: ONNX opset 11 clips no integers.
        index = (start + offset).clamp(0, in_size - 1).long()
        tap = matrix.index_select(dim, index) * weight.reshape(shape)
        out = tap if out is None else out + tap
    return out


def resize_bicubic_traced(matrix: torch.Tensor, size: Tuple) -> torch.Tensor:
    """Bicubic resize of the last two axes, traceable at any size.

    Equals ``F.interpolate(matrix[None], size, mode='bicubic',
    align_corners=False)[0]`` up to float rounding, but a trace records the
    computation for symbolic sizes instead of a fixed output size, and it
    costs two four-tap gathers instead of ONNX Runtime's generic cubic
    ``Resize``. At the input's own size the weights are exactly
    ``(0, 1, 0, 0)``, so the result is the input.

    Args:
        matrix (Tensor): Input of shape ``(C, H, W)``.
        size (tuple): Output ``(H, W)``; ints or 0-dim tensors.

    Returns:
        Tensor: The resized ``(C, H', W')`` matrix.
    """
    # Width first, then height: the order of torch's own kernel.
    return _resize_axis_traced(
        _resize_axis_traced(matrix, 2, size[1]), 1, size[0])


class AttentionBias(nn.Module):
    """Relative-position attention bias of EfficientFormer V1 and V2.

    One learned value per head and per absolute offset ``(|dy|, |dx|)``
    between a query and a key token, on the token grid of a reference input
    (``224`` for ImageNet, ``800`` / ``512`` for the official dense models).
    Queries may sit on a strided grid, as in the V2 stride-2 attention
    downsample: query ``(i, j)`` is at key position
    ``(query_stride * i, query_stride * j)``.

    At the reference grids the bias is exactly the official gather
    ``table[:, index]``. At any other grid the gathered
    ``(num_heads, Nq_ref, Nk_ref)`` matrix is resized to ``(Nq, Nk)`` with
    bicubic interpolation (``align_corners=False``), which is what the
    official detection and segmentation backbones do on every forward pass.
    That rule treats flattened token indices as image coordinates, so it is
    not a geometric resampling of the offsets when the aspect ratio changes;
    it is kept because the official dense checkpoints were trained with it
    (Mask R-CNN inputs are almost never at the reference grid), so any other
    rule would change the features of converted weights.

    The bias is cached in eval mode, keyed by the grids and the table's
    device and dtype. The cache empties whenever the table's values differ
    from those it was filled with, so no update of the table serves a stale
    entry, not even writes through ``table.data`` that bypass autograd's
    version counter, and it is also cleared by :meth:`train`, by loading a
    state dict and by device or dtype moves. It holds at most ``max_cached``
    entries and is bypassed when autograd needs the table or the module is
    traced, scripted or compiled, so exported graphs contain the real
    computation.

    A trace (``torch.jit.trace``, ``torch.onnx.export`` with the TorchScript
    exporter) never takes the "reference grid" shortcut: it resizes the
    gathered matrix inside the graph with :func:`resize_bicubic_traced`,
    which is the identity at the reference grid, so a graph traced at any
    size is right at every size. It gathers the table one grid axis at a
    time, so the graph holds the small offsets of each axis, not the
    ``(Nq, Nk)`` index. Inside :func:`constant_attention_bias` a
    trace computes the bias of the traced size from the table and constants
    only, which a runtime folds when it loads the graph.

    Modified from the ``Attention`` / ``Attention4D`` /
    ``Attention4DDownsample`` bias code of the `official repo
    <https://github.com/snap-research/EfficientFormer>`_ and the bias cache of
    `timm <https://github.com/huggingface/pytorch-image-models>`_.

    Args:
        num_heads (int): Number of attention heads.
        key_grid (int | tuple[int, int]): The key token grid ``(h, w)`` of
            the reference input.
        query_stride (int): Stride of the query grid relative to the key
            grid; the reference query grid is ``ceil(key_grid / stride)``.
            Defaults to 1.
        max_cached (int): Most eval-mode biases kept per module; a resized
            bias is as large as one attention map, and a detector sees many
            input sizes. Defaults to 2.

    Example:
        >>> import torch
        >>> from mmeformer.models.layers import AttentionBias
        >>> bias = AttentionBias(num_heads=8, key_grid=14, query_stride=2)
        >>> print(tuple(bias.table.shape), tuple(bias.index.shape))
        (8, 196) (49, 196)
        >>> print(tuple(bias((7, 7), (14, 14)).shape))
        (8, 49, 196)
        >>> print(tuple(bias((10, 13), (20, 26)).shape))
        (8, 130, 520)
    """

    def __init__(self,
                 num_heads: int,
                 key_grid: Union[int, Sequence[int]],
                 query_stride: int = 1,
                 max_cached: int = 2) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_grid = to_grid(key_grid)
        self.query_stride = query_stride
        self.query_grid = tuple(
            math.ceil(k / query_stride) for k in self.key_grid)
        self.max_cached = max_cached
        kh, kw = self.key_grid
        # Offsets along an axis range over 0..k-1 for every query stride
        # (the last query sits at most at k-1), hence kh * kw entries.
        self.table = nn.Parameter(torch.zeros(num_heads, kh * kw))
        self.register_buffer('index', self._offset_index(), persistent=False)
        self._cache: 'OrderedDict[tuple, torch.Tensor]' = OrderedDict()
        # The table values the cached entries were computed from.
        self._cached_table = None

    def _axis_offsets(self, axis: int) -> torch.Tensor:
        """``|dy|`` (axis 0) or ``|dx|`` (axis 1) between every query and
        key row (column) of the reference grids, of shape ``(q, k)``."""
        queries = torch.arange(self.query_grid[axis]) * self.query_stride
        keys = torch.arange(self.key_grid[axis])
        return (queries.reshape(-1, 1) - keys.reshape(1, -1)).abs()

    def _offset_index(self) -> torch.Tensor:
        """Table column of every (query, key) pair: ``|dy| * kw + |dx|``.

        This equals the official first-appearance numbering of offsets,
        because the first query (0, 0) meets every offset in row-major order.
        """
        (qh, qw), (kh, kw) = self.query_grid, self.key_grid
        d_y = self._axis_offsets(0).reshape(qh, 1, kh, 1)
        d_x = self._axis_offsets(1).reshape(1, qw, 1, kw)
        return (d_y * kw + d_x).reshape(qh * qw, kh * kw)

    def _gather_by_axis(self) -> torch.Tensor:
        """``table[:, index]``, gathered one grid axis at a time.

        The same values as the one gather with :attr:`index`, but a trace
        records two gathers whose indices are the ``(q, k)`` offsets of one
        axis each, instead of the ``(Nq, Nk)`` index: a few kilobytes of
        constants instead of megabytes.
        """
        (qh, qw), (kh, kw) = self.query_grid, self.key_grid
        table = self.table.reshape(self.num_heads, kh, kw)
        # (heads, qh, kh, kw), then (heads, qh, kh, qw, kw).
        bias = table[:, self._axis_offsets(0)][..., self._axis_offsets(1)]
        return bias.permute(0, 1, 3, 2, 4).reshape(self.num_heads, qh * qw,
                                                   kh * kw)

    def extra_repr(self) -> str:
        return (f'num_heads={self.num_heads}, key_grid={self.key_grid}, '
                f'query_grid={self.query_grid}')

    def compute(self, query_grid: Grid, key_grid: Grid) -> torch.Tensor:
        """The bias for the given grids, without the cache."""
        bias = self.table[:, self.index]
        if (tuple(query_grid) == self.query_grid
                and tuple(key_grid) == self.key_grid):
            return bias
        size = (query_grid[0] * query_grid[1], key_grid[0] * key_grid[1])
        work = bias
        if bias.dtype not in (torch.float32, torch.float64):
            # CPU bicubic kernels do not cover every reduced precision.
            work = bias.float()
        resized = F.interpolate(
            work.unsqueeze(0), size=size, mode='bicubic', align_corners=False)
        return resized.squeeze(0).to(bias.dtype)

    def compute_traced(self, query_grid: Grid, key_grid: Grid) -> torch.Tensor:
        """The bias for grids that may be traced 0-dim tensors.

        Gathers by axis (:meth:`_gather_by_axis`), so that a trace holds
        the ``(q, k)`` offsets of each axis instead of the ``(Nq, Nk)``
        index, and always resizes (exactly the identity at the reference
        grids), so that no branch on the traced sizes is frozen into the
        graph.
        """
        return self._resize_traced(self._gather_by_axis(), query_grid,
                                   key_grid)

    @staticmethod
    def _resize_traced(bias: torch.Tensor, query_grid: Grid,
                       key_grid: Grid) -> torch.Tensor:
        """:func:`resize_bicubic_traced` of a gathered bias to the grids."""
        size = (query_grid[0] * query_grid[1], key_grid[0] * key_grid[1])
        work = bias
        if bias.dtype not in (torch.float32, torch.float64):
            work = bias.float()
        return resize_bicubic_traced(work, size).to(bias.dtype)

    def compute_constant(self, query_grid: Grid,
                         key_grid: Grid) -> torch.Tensor:
        """The bias for the traced grids, fixed in the trace.

        Records the gather by axis (:meth:`_gather_by_axis`) and, off the
        reference grids, the resize to the traced grids with constant taps
        and weights: a computation on constants only, which a runtime folds
        when it loads the graph.
        """
        # Nothing reads the traced sizes into the graph: a fixed-shape bias
        # freezes them on purpose.
        tracing_state = torch._C._get_tracing_state()
        torch._C._set_tracing_state(None)
        try:
            query_grid = tuple(int(g) for g in query_grid)
            key_grid = tuple(int(g) for g in key_grid)
        finally:
            torch._C._set_tracing_state(tracing_state)
        bias = self._gather_by_axis()
        if query_grid == self.query_grid and key_grid == self.key_grid:
            return bias
        return self._resize_traced(bias, query_grid, key_grid)

    def forward(self, query_grid: Grid, key_grid: Grid) -> torch.Tensor:
        """Bias of shape ``(num_heads, Nq, Nk)`` for the grids seen.

        Args:
            query_grid (tuple[int, int]): Query token grid ``(h, w)``.
            key_grid (tuple[int, int]): Key token grid ``(h, w)``.

        Returns:
            Tensor: The bias to add to the attention logits.
        """
        if torch.jit.is_tracing():
            if _constant_in_traces.get():
                return self.compute_constant(query_grid, key_grid)
            return self.compute_traced(query_grid, key_grid)
        # Meta tensors (shape inference) have no values to cache or compare.
        if (self.training or is_exporting() or self.table.is_meta
                or (torch.is_grad_enabled() and self.table.requires_grad)):
            return self.compute(query_grid, key_grid)
        if (self._cached_table is None
                or self._cached_table.dtype != self.table.dtype
                or self._cached_table.device != self.table.device
                or not torch.equal(self._cached_table, self.table)):
            self.clear_cache()
            self._cached_table = self.table.detach().clone()
        key = (tuple(query_grid), tuple(key_grid), self.table.device,
               self.table.dtype)
        bias = self._cache.get(key)
        if bias is None:
            bias = self.compute(query_grid, key_grid)
            self._cache[key] = bias
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return bias

    def clear_cache(self) -> None:
        """Drop every cached bias."""
        self._cache.clear()
        self._cached_table = None

    def train(self, mode: bool = True) -> 'AttentionBias':
        self.clear_cache()
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):
        self.clear_cache()
        return super()._apply(fn, *args, **kwargs)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self.clear_cache()
        super()._load_from_state_dict(*args, **kwargs)
