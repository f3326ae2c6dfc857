"""The input size of get_flops.py and pytorch2onnx.py, checked against the
backbone."""
import pytest
import torch
import torch.nn as nn

from mmeformer.models import EfficientFormer, EfficientFormerV2
from mmeformer.runtime import UnsupportedOptionError, check_input_size


class Classifier(nn.Module):

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone


@pytest.fixture(scope='module')
def v2():
    with torch.device('meta'):
        return Classifier(EfficientFormerV2('s0'))


@pytest.mark.parametrize('size, grid', [
    ([224], (224, 224)),
    ([32, 33], (32, 33)),
    ((513, 671), (513, 671)),
    ('800x1216', (800, 1216)),
    (64, (64, 64)),
])
def test_sizes_the_backbone_takes(v2, size, grid):
    assert check_input_size(v2, size) == grid


@pytest.mark.parametrize('model', ['v2', 'v1'])
def test_sizes_the_backbone_refuses_are_named(v2, model):
    if model == 'v1':
        with torch.device('meta'):
            model = EfficientFormer('l1')
    else:
        model = v2
    name = type(getattr(model, 'backbone', model)).__name__
    with pytest.raises(UnsupportedOptionError) as error:
        check_input_size(model, [16, 64], '--verify-shapes')
    assert str(error.value) == (
        '--verify-shapes: input size 16x64 is too small: '
        f'{name} takes inputs of at least 32x32; pass --verify-shapes 32 '
        'or more')


def test_the_limit_is_the_backbones_own(v2):
    """Just under the limit the check of the backbone's forward refuses
    too, and at the limit it takes the input."""
    with pytest.raises(UnsupportedOptionError):
        check_input_size(v2, [31, 64])
    with pytest.raises(ValueError, match='at least 32x32'):
        v2.backbone.check_input(torch.empty(1, 3, 31, 64, device='meta'))
    v2.backbone.check_input(torch.empty(1, 3, 32, 64, device='meta'))


def test_unreadable_sizes_and_other_backbones():
    with pytest.raises(UnsupportedOptionError, match='--shape must be one '):
        check_input_size(nn.Identity(), [1, 2, 3])
    # A backbone that is not ours declares no limit: any positive size.
    assert check_input_size(nn.Identity(), [8]) == (8, 8)
    with pytest.raises(UnsupportedOptionError, match='too small'):
        check_input_size(nn.Identity(), [0, 8])
