import pytest

from mmeformer.utils import parse_size


@pytest.mark.parametrize('value, size', [(800, (800, 800)),
                                         ('800', (800, 800)),
                                         ('800x1333', (800, 1333)),
                                         ('800X1333', (800, 1333)),
                                         ('512,640', (512, 640)),
                                         ((512, 640), (512, 640)),
                                         ([512, 640], (512, 640))])
def test_spellings(value, size):
    assert parse_size(value) == size


@pytest.mark.parametrize(
    'value', ['big', '800x', '1x2x3', 8.5, True, (1, 2, 3), (1.5, 2)])
def test_unreadable_sizes_are_named(value):
    with pytest.raises(ValueError, match='attn_ref_size must be .*got'):
        parse_size(value, 'attn_ref_size')
