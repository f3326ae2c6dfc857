"""Exported files in ONNX Runtime and OpenVINO at named precisions."""
import sys

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper

from mmeformer.deployment import (RUNTIMES, available_precisions,
                                  check_precision, compare_outputs,
                                  open_session)


class Tiny(nn.Module):
    """Convolutions, GELU, a softmax and a matmul: bf16 rounds them all."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.proj = nn.Conv2d(16, 8, 1)

    def forward(self, x):
        x = nn.functional.gelu(self.conv(x))
        attn = (x.flatten(2).transpose(1, 2) @ x.flatten(2)).softmax(-1)
        return self.proj(x), attn


@pytest.fixture(scope='module')
def tiny():
    return Tiny().eval()


@pytest.fixture
def tiny_file(tiny, export_dynamic):
    return export_dynamic(tiny, torch.randn(1, 3, 8, 8), 'tiny.onnx')


@pytest.fixture
def qdq_file(tmp_path):
    """A quantized (QDQ) file: int8 fake quantization, then ReLU."""
    graph = helper.make_graph(
        [
            helper.make_node('QuantizeLinear', ['input', 's', 'z'], ['q']),
            helper.make_node('DequantizeLinear', ['q', 's', 'z'], ['dq']),
            helper.make_node('Relu', ['dq'], ['output'])
        ], 'qdq',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info('output', TensorProto.FLOAT, [2, 4])], [
            numpy_helper.from_array(np.array(0.1, np.float32), 's'),
            numpy_helper.from_array(np.array(0, np.int8), 'z')
        ])
    path = str(tmp_path / 'qdq.onnx')
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]),
        path)
    return path


def run_both(tiny, session, x):
    with torch.no_grad():
        expected = tiny(x)
    return max(compare_outputs(expected, session(x)))


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_fp32_equals_pytorch_to_float_rounding(runtime, tiny, tiny_file):
    session = open_session(tiny_file, runtime, 'fp32', threads=1)
    assert (session.runtime, session.precision) == (runtime, 'fp32')
    assert session.input_names == ['input']
    assert len(session.output_names) == 2
    x = torch.randn(2, 3, 8, 12)
    assert run_both(tiny, session, x) < 1e-5
    # NumPy in, NumPy out, in the file's output order.
    outputs = session(x.numpy())
    assert [o.shape for o in outputs] == [(2, 8, 8, 12), (2, 96, 96)]


@pytest.mark.skipif(
    'bf16' not in available_precisions('openvino'),
    reason='this CPU runs no bfloat16 in OpenVINO')
def test_openvino_bf16_is_its_own_precision(tiny, tiny_file):
    """OpenVINO's CPU default is bf16 here: fp32 must be asked for."""
    x = torch.randn(2, 3, 8, 12)
    fp32 = run_both(tiny, open_session(tiny_file, 'openvino', 'fp32'), x)
    bf16 = run_both(tiny, open_session(tiny_file, 'openvino', 'bf16'), x)
    assert fp32 < 1e-5 < 1e-4 < bf16 < 3e-2


@pytest.mark.parametrize('runtime', RUNTIMES)
def test_int8_runs_a_quantized_file_only(runtime, qdq_file, tiny_file):
    session = open_session(qdq_file, runtime, 'int8')
    x = np.array([[-1, 0.04, 0.06, 0.33], [20, 0.1, 0.5, -0.2]], np.float32)
    # Rounded to steps of 0.1 (ties to even), saturated at 127 steps.
    expected = [[0, 0, 0.1, 0.3], [12.7, 0.1, 0.5, 0]]
    np.testing.assert_allclose(session(x)[0], expected, atol=1e-6)
    with pytest.raises(
            ValueError, match="quantized file: open it with "
            "precision 'int8'"):
        open_session(qdq_file, runtime, 'fp32')
    with pytest.raises(ValueError, match='holds no quantized operators'):
        open_session(tiny_file, runtime, 'int8')


@pytest.mark.parametrize('runtime, precision, message', [
    ('onnxruntime', 'bf16', 'onnxruntime cannot run bf16 here .onnxruntime '
     'has no CPU kernels for it.; it can run fp32, int8 on this machine'),
    ('onnxruntime', 'fp16', 'it can run fp32, int8'),
    ('tensorrt', 'fp32', "unknown runtime 'tensorrt'; choose one of "
     'onnxruntime, openvino'),
    ('openvino', 'fp64', "unknown precision 'fp64'; choose one of fp32, "
     'fp16, bf16, int8'),
])
def test_precisions_a_runtime_cannot_run_are_refused(runtime, precision,
                                                     message, tiny_file):
    with pytest.raises(ValueError, match=message):
        check_precision(runtime, precision)
    with pytest.raises(ValueError, match=message):
        open_session(tiny_file, runtime, precision)


def test_missing_runtime_names_the_requirements(monkeypatch):
    monkeypatch.setitem(sys.modules, 'openvino', None)  # not importable
    assert available_precisions('openvino') == ()
    with pytest.raises(
            ValueError,
            match='openvino is not installed: pip install -r '
            'requirements/deploy.txt'):
        check_precision('openvino', 'fp32')


def test_bad_files_and_inputs_are_refused(tiny_file, tmp_path):
    with pytest.raises(ValueError, match='missing.onnx does not exist'):
        open_session(str(tmp_path / 'missing.onnx'), 'onnxruntime')
    session = open_session(tiny_file, 'onnxruntime')
    with pytest.raises(
            ValueError, match=r'takes 1 input\(s\) \(input\), '
            'got 2'):
        session(
            np.zeros((1, 3, 8, 8), np.float32),
            np.zeros((1, 3, 8, 8), np.float32))
