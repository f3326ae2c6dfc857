"""mmeformer.latency.profile: time per operator type in each runtime."""
import pytest
import torch.nn as nn

from mmeformer.latency.profile import OpTime, profile_model, profile_table
from mmeformer.models.layers import conv_bn


def model():
    return nn.Sequential(
        conv_bn(3, 8, 3, act_cfg=dict(type='GELU')),
        conv_bn(8, 8, 3, groups=8)).eval()


@pytest.mark.parametrize('runtime, conv', [('torch', 'aten::conv2d'),
                                           ('onnxruntime', 'Conv'),
                                           ('openvino', None)])
def test_profiles_a_whole_model(runtime, conv):
    times = profile_model(model(), (32, 32), runtime, threads=1, runs=2)
    assert all(t.ms >= 0 and t.count > 0 for t in times.values())
    if conv is not None:
        # Two convolutions per run, BatchNorm folded into the first.
        assert times[conv].count == 2
        assert not any('batch_norm' in op.lower() for op in times)
    else:
        assert any('conv' in op.lower() for op in times)


def test_one_table_for_all_runtimes():
    lines = profile_table(
        dict(
            torch=dict(conv=OpTime(2, 3.), gelu=OpTime(1, 1.)),
            onnxruntime=dict(
                Conv=OpTime(2, 1.5), Gelu=OpTime(1, .25), Add=OpTime(1, .25))),
        top=2)
    assert lines[0] == '| runtime | op type | count | total (ms) | share |'
    assert '| torch | conv | 2 | 3.000 | 75.0% |' in lines
    assert '| onnxruntime | other | 1 | 0.250 | 12.5% |' in lines
    assert '| onnxruntime | total | 4 | 2.000 | 100% |' in lines
