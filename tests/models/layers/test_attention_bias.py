import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from mmeformer.models.layers import AttentionBias
from mmeformer.models.layers.attention_bias import (constant_attention_bias,
                                                    resize_bicubic_traced)


def first_appearance_index(key_res, query_stride):
    """The official enumeration: offsets numbered in order of appearance."""
    query_res = math.ceil(key_res / query_stride)
    keys = list(itertools.product(range(key_res), range(key_res)))
    queries = list(itertools.product(range(query_res), range(query_res)))
    offsets, index = {}, []
    for q in queries:
        for k in keys:
            offset = (abs(q[0] * query_stride - k[0]),
                      abs(q[1] * query_stride - k[1]))
            offsets.setdefault(offset, len(offsets))
            index.append(offsets[offset])
    return torch.tensor(index).view(len(queries), len(keys)), len(offsets)


@pytest.mark.parametrize('key_res, stride', [(7, 1), (14, 2), (7, 2), (25, 1),
                                             (16, 2)])
def test_index_matches_official_enumeration(key_res, stride):
    bias = AttentionBias(8, key_res, query_stride=stride)
    index, num_offsets = first_appearance_index(key_res, stride)
    assert torch.equal(bias.index, index)
    assert bias.table.shape == (8, num_offsets)


def test_non_square_grid_indexes_absolute_offsets():
    bias = AttentionBias(2, (3, 5))
    assert bias.table.shape == (2, 15)
    # Query (0, 0) against key (2, 4): offset (2, 4); query (2, 1) against
    # key (0, 4): offset (2, 3). Columns are |dy| * 5 + |dx|.
    assert bias.index[0, 2 * 5 + 4] == 2 * 5 + 4
    assert bias.index[2 * 5 + 1, 0 * 5 + 4] == 2 * 5 + 3
    assert bias.index.max() == 14


def test_index_is_not_saved():
    bias = AttentionBias(4, 7)
    assert list(bias.state_dict()) == ['table']


@pytest.fixture
def bias():
    torch.manual_seed(0)
    module = AttentionBias(4, 14, query_stride=2)
    with torch.no_grad():
        module.table.normal_()
    return module


def test_reference_grid_is_the_exact_gather(bias):
    out = bias((7, 7), (14, 14))
    assert torch.equal(out, bias.table[:, bias.index])


def test_other_grids_resize_the_gathered_matrix_bicubically(bias):
    out = bias((10, 13), (20, 26))
    expected = F.interpolate(
        bias.table[:, bias.index][None], size=(130, 520),
        mode='bicubic').squeeze(0)
    assert out.shape == (4, 130, 520)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_cache_serves_eval_without_grad(bias):
    bias.eval()
    with torch.no_grad():
        first = bias((10, 13), (20, 26))
        assert bias((10, 13), (20, 26)) is first
        other = bias((7, 7), (14, 14))
    assert other.shape == (4, 49, 196)
    assert len(bias._cache) == 2


def test_cache_is_bypassed_when_autograd_needs_the_table(bias):
    bias.eval()
    out = bias((10, 13), (20, 26))
    assert out.requires_grad
    assert not bias._cache
    out.sum().backward()
    assert bias.table.grad.abs().sum() > 0


def test_cache_is_bypassed_in_training(bias):
    with torch.no_grad():
        bias((7, 7), (14, 14))
    assert not bias._cache


@pytest.mark.parametrize('action', ['train', 'load', 'double', 'inplace'])
def test_cache_never_serves_stale_values(bias, action):
    bias.eval()
    with torch.no_grad():
        bias((10, 13), (20, 26))
        if action == 'train':
            bias.train()
            bias.table.add_(1.)
            bias.eval()
        elif action == 'load':
            bias.load_state_dict({'table': torch.randn_like(bias.table)})
        elif action == 'double':
            bias.double()
        else:
            bias.table.mul_(-2.)
        if action != 'inplace':
            assert not bias._cache
        out = bias((10, 13), (20, 26))
        expected = bias.compute((10, 13), (20, 26))
    assert out.dtype == bias.table.dtype
    assert torch.equal(out, expected)


def test_cache_keeps_at_most_max_cached_entries():
    bias = AttentionBias(2, 7, max_cached=2).eval()
    with torch.no_grad():
        for grid in [(8, 8), (9, 9), (10, 10)]:
            bias(grid, grid)
    assert [key[0] for key in bias._cache] == [(9, 9), (10, 10)]


class Holder(torch.nn.Module):
    """Adds the first query row of the bias to the flattened input."""

    def __init__(self):
        super().__init__()
        self.bias = AttentionBias(2, 7)

    def forward(self, x):
        grid = (x.shape[-2], x.shape[-1])
        return x.flatten(1).unsqueeze(1) + self.bias(grid, grid)[:, :1]


def test_tracing_bypasses_the_cache():
    holder = Holder().eval()
    with torch.no_grad():
        holder.bias.table.normal_()
        traced = torch.jit.trace(
            holder, torch.zeros(1, 7, 7), check_trace=False)
        assert not holder.bias._cache
        holder.bias.table.add_(1.)
        # The graph reads the table, it did not freeze a cached tensor.
        torch.testing.assert_close(
            traced(torch.zeros(1, 7, 7)), holder(torch.zeros(1, 7, 7)))


@pytest.mark.parametrize('dtype', [torch.float64, torch.bfloat16])
def test_resize_keeps_the_table_dtype(bias, dtype):
    bias.to(dtype)
    out = bias((10, 13), (20, 26))
    expected = F.interpolate(
        bias.table[:, bias.index][None].double(),
        size=(130, 520),
        mode='bicubic').squeeze(0)
    assert out.dtype == dtype
    tolerance = 1e-12 if dtype == torch.float64 else 5e-2
    torch.testing.assert_close(
        out.double(), expected, rtol=tolerance, atol=tolerance)


def test_compiling_bypasses_the_cache():
    holder = Holder().eval()
    compiled = torch.compile(holder, backend='eager', fullgraph=True)
    x = torch.zeros(1, 8, 8)
    with torch.no_grad():
        holder.bias.table.normal_()
        compiled(x)
        assert not holder.bias._cache
        holder.bias.table.add_(1.)
        torch.testing.assert_close(compiled(x), holder(x))


@pytest.mark.parametrize('write', ['data_copy', 'data_assign'])
def test_cache_sees_writes_that_bypass_the_version_counter(bias, write):
    bias.eval()
    with torch.no_grad():
        stale = bias((10, 13), (20, 26)).clone()
    new_table = torch.randn_like(bias.table)
    if write == 'data_copy':
        bias.table.data.copy_(new_table)
    else:
        bias.table.data = new_table
    with torch.no_grad():
        out = bias((10, 13), (20, 26))
    assert not torch.equal(out, stale)
    assert torch.equal(out, bias.compute((10, 13), (20, 26)))


@pytest.mark.parametrize('src, dst', [((49, 196), (130, 520)),
                                      ((49, 196), (20, 35)),
                                      ((625, 2500), (950, 3800)),
                                      ((6, 9), (6, 9)), ((5, 7), (1, 1))])
def test_traced_resize_matches_torch_bicubic(src, dst):
    torch.manual_seed(0)
    matrix = torch.randn(2, *src, dtype=torch.float64)
    for dtype, tolerance in ((torch.float64, 1e-12), (torch.float32, 2e-6)):
        matrix = matrix.to(dtype)
        out = resize_bicubic_traced(matrix, dst)
        expected = F.interpolate(
            matrix[None], size=dst, mode='bicubic', align_corners=False)[0]
        if src == dst:
            assert torch.equal(out, matrix)
        # float32 differs by the rounding of the tap weights only.
        scale = matrix.abs().max().item()
        torch.testing.assert_close(
            out, expected, rtol=0, atol=tolerance * scale)


def test_trace_at_the_reference_grid_resizes_at_other_grids():
    """No "reference grid, no resize" branch is frozen into a trace."""
    holder = Holder().eval()
    with torch.no_grad():
        holder.bias.table.normal_()
        traced = torch.jit.trace(
            holder, torch.zeros(1, 7, 7), check_trace=False)
        for size in [(7, 7), (9, 12), (5, 4)]:
            x = torch.randn(1, *size)
            torch.testing.assert_close(traced(x), holder(x), rtol=0, atol=1e-5)


def test_fixed_size_trace_computes_from_the_table():
    """A fixed-size trace records the bias of its size from the table (a
    file holds the table, not the gathered bias), with no generic
    resize."""
    holder = Holder().eval()
    with torch.no_grad():
        holder.bias.table.normal_()
        for size in [(7, 7), (9, 12)]:
            x = torch.zeros(1, *size)
            expected = holder(x)
            with constant_attention_bias():
                traced = torch.jit.trace(holder, x, check_trace=False)
            assert 'upsample' not in str(traced.graph)
            if size == (7, 7):
                # At the reference grid: the gather alone, exact.
                assert torch.equal(traced(x), expected)
            else:
                torch.testing.assert_close(
                    traced(x), expected, rtol=0, atol=1e-5)
            # Bicubic weights sum to one: a shifted table shifts the bias.
            holder.bias.table.add_(1.)
            torch.testing.assert_close(
                traced(x), expected + 1, rtol=0, atol=1e-5)
            holder.bias.table.sub_(1.)
