import pytest
import torch

from mmeformer.converters import ConversionError
from mmeformer.converters.bias import adapt_bias_tables, resize_table


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
    table = torch.randn(8, 49)
    tensors = {name: table, kept: table.clone()}
    expected = {name: (8, 625), kept: (8, 49)}
    src = {name: (7, 7), kept: (7, 7)}
    dst = {name: (25, 25), kept: (7, 7)}

    lines = adapt_bias_tables(dict(tensors), expected, src, dst, 'zero')
    assert lines == [
        '1 kept (7x7 offsets)', '1 zero-initialised (7x7 -> 25x25 offsets)'
    ]
    zeroed = dict(tensors)
    adapt_bias_tables(zeroed, expected, src, dst, 'zero')
    assert zeroed[name].shape == (8, 625) and not zeroed[name].any()
    assert zeroed[kept] is tensors[kept]
    resized = dict(tensors)
    adapt_bias_tables(resized, expected, src, dst, 'resize')
    assert torch.equal(resized[name], resize_table(table, (7, 7), (25, 25)))

    with pytest.raises(ConversionError, match='Unknown bias mode'):
        adapt_bias_tables(dict(tensors), expected, src, dst, 'copy')
    with pytest.raises(ConversionError, match='7x7 grid of the source'):
        adapt_bias_tables({name: torch.zeros(8, 48)}, expected, src, dst,
                          'zero')
