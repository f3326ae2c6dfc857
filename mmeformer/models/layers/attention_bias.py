"""Learned relative-position attention bias usable at any token grid."""
import math
from collections import OrderedDict
from typing import Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

Grid = Tuple[int, int]


def to_grid(size: Union[int, Sequence[int]]) -> Grid:
    """Turn an int or an ``(h, w)`` pair into an ``(h, w)`` tuple of ints."""
    if isinstance(size, int):
        return size, size
    size = tuple(int(s) for s in size)
    if len(size) != 2:
        raise ValueError(f'expected an int or an (h, w) pair, got {size}')
    return size


try:
    from torch.compiler import is_compiling
except ImportError:  # torch < 2.3
    from torch._dynamo import is_compiling


def is_exporting() -> bool:
    """Whether the current forward is traced, scripted or compiled."""
    return (torch.jit.is_tracing() or torch.jit.is_scripting()
            or is_compiling())


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
    device and dtype. The cache empties whenever the table's version counter
    moves, so an in-place update of the table never serves a stale entry,
    and is also cleared by :meth:`train`, by loading a state dict and by
    device or dtype moves. It holds at most ``max_cached`` entries and is
    bypassed when autograd needs the table or the module is traced,
    scripted or compiled, so exported graphs contain the real computation.

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
        self._cache_version = -1

    def _offset_index(self) -> torch.Tensor:
        """Table column of every (query, key) pair: ``|dy| * kw + |dx|``.

        This equals the official first-appearance numbering of offsets,
        because the first query (0, 0) meets every offset in row-major order.
        """
        (qh, qw), (kh, kw) = self.query_grid, self.key_grid
        q_y, q_x = torch.meshgrid(
            torch.arange(qh) * self.query_stride,
            torch.arange(qw) * self.query_stride,
            indexing='ij')
        k_y, k_x = torch.meshgrid(
            torch.arange(kh), torch.arange(kw), indexing='ij')
        d_y = (q_y.reshape(-1, 1) - k_y.reshape(1, -1)).abs()
        d_x = (q_x.reshape(-1, 1) - k_x.reshape(1, -1)).abs()
        return d_y * kw + d_x

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

    def forward(self, query_grid: Grid, key_grid: Grid) -> torch.Tensor:
        """Bias of shape ``(num_heads, Nq, Nk)`` for the grids seen.

        Args:
            query_grid (tuple[int, int]): Query token grid ``(h, w)``.
            key_grid (tuple[int, int]): Key token grid ``(h, w)``.

        Returns:
            Tensor: The bias to add to the attention logits.
        """
        if (self.training or is_exporting()
                or (torch.is_grad_enabled() and self.table.requires_grad)):
            return self.compute(query_grid, key_grid)
        if self._cache_version != self.table._version:
            self.clear_cache()
            self._cache_version = self.table._version
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

    def train(self, mode: bool = True) -> 'AttentionBias':
        self.clear_cache()
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):
        self.clear_cache()
        return super()._apply(fn, *args, **kwargs)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self.clear_cache()
        super()._load_from_state_dict(*args, **kwargs)
