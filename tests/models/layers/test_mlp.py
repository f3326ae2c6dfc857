"""The official initialisation of the MLPs' 1x1 convolutions."""
import math

import pytest
import torch

from mmeformer.models.layers import ConvMlp


@pytest.mark.parametrize('mid_conv', [False, True])
def test_1x1_convs_start_from_a_truncated_normal(mid_conv):
    torch.manual_seed(0)
    mlp = ConvMlp(96, 384, mid_conv=mid_conv)
    for unit in (mlp.fc1, mlp.fc2):
        weight = unit.conv.weight
        assert abs(weight.std().item() - 0.02) < 0.001
        assert weight.abs().max() < 0.2  # no tail beyond a few std
        assert not unit.conv.bias.any()
    if mid_conv:
        # PyTorch's default, as the official `mid` (created after its init):
        # uniform within 1/sqrt(fan_in), with a uniform bias as well.
        conv = mlp.mid.conv
        bound = 1 / math.sqrt(9)
        assert conv.weight.abs().max() <= bound
        assert abs(conv.weight.std().item() - bound / math.sqrt(3)) < 0.01
        assert conv.bias.any()
