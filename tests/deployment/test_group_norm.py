"""GroupNorm in ONNX Runtime: the export graph of ExportGroupNorm."""
import pytest
import torch
import torch.nn as nn

from mmeformer.deployment import (ExportGroupNorm, compare_outputs,
                                  open_session, swap_group_norms)


def group_norm(num_groups, channels=48):
    torch.manual_seed(0)
    norm = nn.GroupNorm(num_groups, channels)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    return norm.eval()


@pytest.mark.parametrize('num_groups', [1, 4])
def test_onnxruntime_matches_pytorch_on_large_groups(num_groups,
                                                     export_dynamic):
    norm = group_norm(num_groups)
    swapped = swap_group_norms(nn.Sequential(norm))
    path = export_dynamic(swapped, torch.randn(1, 48, 16, 16), 'gn.onnx')
    session = open_session(path, 'onnxruntime')
    # V1's stride-4 output at 800x1216 (200x304), off-centre like a real
    # feature map: 2.9 million values in one group, where ONNX Runtime's
    # InstanceNormalization is 1e-4 off.
    for shape in [(1, 48, 200, 304), (2, 48, 33, 17)]:
        x = torch.randn(*shape) * 0.3 + 0.5
        with torch.no_grad():
            expected = norm(x)
        error, = compare_outputs([expected], session(x))
        assert error < 1e-6


def test_eager_outputs_and_state_dict_do_not_change():
    norm = group_norm(1)
    model = nn.Sequential(norm, nn.Sequential(group_norm(4, 8)))
    state = model.state_dict()
    x = torch.randn(2, 48, 9, 7)
    with torch.no_grad():
        expected = norm(x)
    assert swap_group_norms(model) is model
    assert isinstance(model[0], ExportGroupNorm)
    assert isinstance(model[1][0], ExportGroupNorm)
    assert model[0].weight is norm.weight
    assert model.state_dict().keys() == state.keys()
    with torch.no_grad():
        assert torch.equal(model[0](x), expected)
