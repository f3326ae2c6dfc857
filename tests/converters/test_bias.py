import pytest
import torch
from checkpoint_sources import offset_table

from mmeformer.converters import ConversionError
from mmeformer.converters.bias import adapt_bias_tables, resize_table


def test_resize_on_grid_points_picks_offsets():
    # Aligned corners: 5x3 -> 3x2 samples rows 0, 2, 4 and columns 0, 2.
    resized = resize_table(offset_table(2, (5, 3)), (5, 3), (3, 2))
    assert resized.tolist() == [
        [0, 2, 20, 22, 40, 42],
        [100, 102, 120, 122, 140, 142],
    ]


def test_resize_between_grid_points_is_bicubic():
    # One row of offsets 0..3 upsampled to 7 columns: columns 0, 0.5, ...,
    # 3. A value at dx=1 spreads with PyTorch's cubic convolution weights
    # (a = -0.75): 19/32 at half a column, -3/32 at one and a half, the
    # offsets beyond the border clamped to it.
    table = torch.tensor([[0., 1., 0., 0., 0., 0., 0., 0.]])
    resized = resize_table(table, (2, 4), (2, 7)).reshape(2, 7)
    torch.testing.assert_close(
        resized,
        torch.tensor([[0., 19 / 32, 1., 19 / 32, 0., -3 / 32, 0.],
                      [0., 0., 0., 0., 0., 0., 0.]]),
        rtol=0,
        atol=1e-6)


def test_resize_keeps_corners_and_constants():
    table = torch.randn(8, 7 * 7)
    resized = resize_table(table, (7, 7), (25, 25)).reshape(8, 25, 25)
    grid = table.reshape(8, 7, 7)
    # Offset 0 and the largest offset keep their values.
    assert torch.allclose(resized[:, 0, 0], grid[:, 0, 0])
    assert torch.allclose(resized[:, -1, -1], grid[:, -1, -1])
    constant = torch.full((2, 14 * 10), 0.5)
    assert torch.allclose(
        resize_table(constant, (14, 10), (50, 30)), torch.full((2, 1500), 0.5))
    assert resize_table(table.half(), (7, 7), (3, 4)).dtype == torch.half


def test_adapt_tables():
    name = 'backbone.stages.3.blocks.3.token_mixer.attn_bias.table'
    kept = 'backbone.stages.2.blocks.4.token_mixer.attn_bias.table'
    table = offset_table(2, (7, 7))
    tensors = {name: table, kept: table.clone()}
    expected = {name: (2, 12), kept: (2, 49)}
    src = {name: (7, 7), kept: (7, 7)}
    dst = {name: (3, 4), kept: (7, 7)}

    lines = adapt_bias_tables(dict(tensors), expected, src, dst, 'zero')
    assert lines == [
        '1 kept (7x7 offsets)', '1 zero-initialised (7x7 -> 3x4 offsets)'
    ]
    zeroed = dict(tensors)
    adapt_bias_tables(zeroed, expected, src, dst, 'zero')
    assert zeroed[name].shape == (2, 12) and not zeroed[name].any()
    assert zeroed[kept] is tensors[kept]
    resized = dict(tensors)
    adapt_bias_tables(resized, expected, src, dst, 'resize')
    # 3 rows by 4 columns: offsets dy 0, 3, 6 and dx 0, 2, 4, 6.
    assert resized[name].tolist() == [
        [0, 2, 4, 6, 30, 32, 34, 36, 60, 62, 64, 66],
        [100, 102, 104, 106, 130, 132, 134, 136, 160, 162, 164, 166],
    ]
    assert resized[kept] is tensors[kept]

    with pytest.raises(ConversionError, match='Unknown bias mode'):
        adapt_bias_tables(dict(tensors), expected, src, dst, 'copy')
    with pytest.raises(ConversionError, match='7x7 grid of the source'):
        adapt_bias_tables({name: torch.zeros(8, 48)}, expected, src, dst,
                          'zero')
