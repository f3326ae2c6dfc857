"""Run an exported file in ONNX Runtime or OpenVINO at a named precision.

The one place where the deployment tools, the benchmark and the tests run
an exported model. Every session names its precision, and the runtime is
told it explicitly: OpenVINO's CPU plugin would otherwise run in bfloat16
on CPUs that support it, and ONNX Runtime runs a file at the precision the
file holds (float32, or int8 for a quantized file).

The runtimes are optional (``pip install -r requirements/deploy.txt``);
they are imported only when a session is opened or a precision checked.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

__all__ = [
    'RUNTIMES', 'PRECISIONS', 'RUNTIME_PRECISIONS', 'TOLERANCES',
    'available_precisions', 'check_precision', 'is_quantized',
    'onnxruntime_session', 'open_session', 'RuntimeSession'
]

#: Runtimes an exported file is run in (CPU).
RUNTIMES = ('onnxruntime', 'openvino')

#: Precisions, from the most to the least accurate.
PRECISIONS = ('fp32', 'fp16', 'bf16', 'int8')

#: What each runtime can run, on a CPU that supports it. ``int8`` runs a
#: quantized file (ONNX QDQ, or an NNCF-quantized OpenVINO IR); the other
#: precisions run a float file. ONNX Runtime's CPU provider has no float16
#: or bfloat16 kernels for most operators.
RUNTIME_PRECISIONS: Dict[str, Tuple[str, ...]] = {
    'onnxruntime': ('fp32', 'int8'),
    'openvino': ('fp32', 'fp16', 'bf16', 'int8'),
}

#: Largest ``max |runtime - fp32 PyTorch|`` relative to the output's max
#: magnitude that a verification accepts by default. fp32 is float rounding
#: (measured 2e-6 and under on every variant); bf16 keeps 8 bits of
#: mantissa (measured 4e-3 to 6e-3 on the V2 dense backbones). An int8 file
#: is judged by its score on data, not element by element: None means the
#: deviation is reported, not bounded.
TOLERANCES: Dict[str, Optional[float]] = {
    'fp32': 1e-4,
    'fp16': 1e-2,
    'bf16': 3e-2,
    'int8': None,
}

#: OpenVINO's ``INFERENCE_PRECISION_HINT`` per precision (an int8 model
#: runs its quantized layers in int8 and the others in float32).
_OPENVINO_HINTS = {'fp32': 'f32', 'fp16': 'f16', 'bf16': 'bf16', 'int8': 'f32'}

#: OpenVINO CPU ``OPTIMIZATION_CAPABILITIES`` each precision needs.
_OPENVINO_CAPABILITIES = {'fp16': 'FP16', 'bf16': 'BF16', 'int8': 'INT8'}

#: Operators of a quantized ONNX file.
_ONNX_QUANTIZED_OPS = frozenset({
    'QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear',
    'QLinearConv', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger'
})

#: Operators of a quantized OpenVINO model (NNCF's, or a QDQ file read by
#: OpenVINO).
_OPENVINO_QUANTIZED_OPS = frozenset({'FakeQuantize', 'FakeConvert'})

_INSTALL = 'pip install -r requirements/deploy.txt'


def _check_runtime(runtime: str) -> None:
    if runtime not in RUNTIMES:
        raise ValueError(f'unknown runtime {runtime!r}; choose one of '
                         f"{', '.join(RUNTIMES)}")


def available_precisions(runtime: str) -> Tuple[str, ...]:
    """The precisions ``runtime`` can run on this machine's CPU.

    Args:
        runtime (str): One of :data:`RUNTIMES`.

    Returns:
        tuple[str]: A subset of :data:`RUNTIME_PRECISIONS` ``[runtime]``;
        empty if the runtime is not installed.
    """
    _check_runtime(runtime)
    try:
        module = __import__(runtime)
    except ImportError:
        return ()
    if runtime == 'onnxruntime':
        return RUNTIME_PRECISIONS[runtime]
    capabilities = module.Core().get_property('CPU',
                                              'OPTIMIZATION_CAPABILITIES')
    return tuple(
        precision for precision in RUNTIME_PRECISIONS[runtime]
        if _OPENVINO_CAPABILITIES.get(precision, 'FP32') in capabilities)


def check_precision(runtime: str, precision: str) -> None:
    """Refuse a precision that ``runtime`` cannot run on this machine.

    Args:
        runtime (str): One of :data:`RUNTIMES`.
        precision (str): One of :data:`PRECISIONS`.

    Raises:
        ValueError: Naming the precisions that can run here, or the
            requirements file if the runtime is not installed.
    """
    _check_runtime(runtime)
    if precision not in PRECISIONS:
        raise ValueError(f'unknown precision {precision!r}; choose one of '
                         f"{', '.join(PRECISIONS)}")
    available = available_precisions(runtime)
    if not available:
        raise ValueError(f'{runtime} is not installed: {_INSTALL}')
    if precision not in available:
        supported = RUNTIME_PRECISIONS[runtime]
        reason = ('this CPU does not support it'
                  if precision in supported else f'{runtime} has no CPU '
                  f'kernels for it')
        raise ValueError(
            f'{runtime} cannot run {precision} here ({reason}); it can run '
            f"{', '.join(available)} on this machine")


def is_quantized(path: str, runtime: str = 'onnxruntime') -> bool:
    """Whether an exported file holds quantized (int8) operators.

    Args:
        path (str): An ``.onnx`` file, or for OpenVINO also an ``.xml`` IR.
        runtime (str): The runtime that reads the file. Defaults to
            ``'onnxruntime'``.

    Returns:
        bool: True for a QDQ / NNCF-quantized file.
    """
    _check_runtime(runtime)
    if runtime == 'onnxruntime':
        import onnx
        graph = onnx.load(path, load_external_data=False).graph
        return any(node.op_type in _ONNX_QUANTIZED_OPS for node in graph.node)
    import openvino as ov
    return any(op.get_type_name() in _OPENVINO_QUANTIZED_OPS
               for op in ov.Core().read_model(path).get_ops())


def onnxruntime_session(onnx_file: str,
                        threads: Optional[int] = None,
                        custom_ops: Optional[str] = None):
    """An ONNX Runtime CPU session whose worker threads do not spin.

    Spinning threads keep the cores busy after each run and slow whatever
    runs next, PyTorch included.

    Args:
        onnx_file (str): The model.
        threads (int, optional): Intra-op threads; ONNX Runtime's choice if
            None. Defaults to None.
        custom_ops (str, optional): A custom-op library to register, e.g.
            MMDeploy's ``libmmdeploy_onnxruntime_ops.so``. Defaults to None.

    Returns:
        onnxruntime.InferenceSession: The session.
    """
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    options.add_session_config_entry('session.inter_op.allow_spinning', '0')
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if custom_ops is not None:
        options.register_custom_ops_library(custom_ops)
    return ort.InferenceSession(
        onnx_file, options, providers=['CPUExecutionProvider'])


class RuntimeSession:
    """An exported model opened in one runtime at one precision.

    Built by :func:`open_session`. Calling it runs the model on NumPy
    arrays or torch tensors, one per input, and returns every output.

    Attributes:
        runtime (str): One of :data:`RUNTIMES`.
        precision (str): One of :data:`PRECISIONS`.
        path (str): The file.
        input_names (list[str]): The inputs, in call order.
        output_names (list[str]): The outputs, in return order.
    """

    def __init__(self, runtime: str, precision: str, path: str,
                 input_names: Sequence[str], output_names: Sequence[str],
                 run) -> None:
        self.runtime = runtime
        self.precision = precision
        self.path = path
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self._run = run

    def __call__(self, *inputs: Union[np.ndarray,
                                      torch.Tensor]) -> List[np.ndarray]:
        if len(inputs) != len(self.input_names):
            raise ValueError(
                f'{osp.basename(self.path)} takes {len(self.input_names)} '
                f"input(s) ({', '.join(self.input_names)}), got "
                f'{len(inputs)}')
        arrays = [
            x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x
            for x in inputs
        ]
        return self._run([np.ascontiguousarray(x) for x in arrays])

    def __repr__(self) -> str:
        return (f'RuntimeSession({self.runtime}, {self.precision}, '
                f'{osp.basename(self.path)})')


def _open_onnxruntime(path: str, threads: Optional[int]) -> tuple:
    session = onnxruntime_session(path, threads)
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]

    def run(arrays):
        return session.run(None, dict(zip(inputs, arrays)))

    return inputs, outputs, run


def _open_openvino(path: str, precision: str, threads: Optional[int]) -> tuple:
    import openvino as ov
    hint = _OPENVINO_HINTS[precision]
    config = {'INFERENCE_PRECISION_HINT': hint, 'PERFORMANCE_HINT': 'LATENCY'}
    if threads is not None:
        config['INFERENCE_NUM_THREADS'] = threads
    compiled = ov.Core().compile_model(path, 'CPU', config)
    used = compiled.get_property('INFERENCE_PRECISION_HINT')
    if used != getattr(ov.Type, hint):
        raise RuntimeError(f'OpenVINO compiled {path} at {used}, not at the '
                           f'requested {hint}')
    request = compiled.create_infer_request()
    inputs = [port.get_any_name() for port in compiled.inputs]
    outputs = [port.get_any_name() for port in compiled.outputs]

    def run(arrays):
        result = request.infer(dict(enumerate(arrays)))
        return [result[port] for port in compiled.outputs]

    return inputs, outputs, run


def open_session(path: str,
                 runtime: str,
                 precision: str = 'fp32',
                 threads: Optional[int] = None) -> RuntimeSession:
    """Open an exported file in a runtime at a named precision (CPU).

    ONNX Runtime runs a float file in fp32 and a quantized (QDQ) file in
    int8. OpenVINO runs an ``.onnx`` file or an ``.xml`` IR with
    ``INFERENCE_PRECISION_HINT`` set to the precision (``f32`` for fp32 and
    for the float layers of an int8 model), and the compiled model is
    checked to use it. Neither runtime's worker threads spin between runs
    in ONNX Runtime; OpenVINO's do, so time it apart from other runtimes.

    Args:
        path (str): The exported file.
        runtime (str): One of :data:`RUNTIMES`.
        precision (str): One of :data:`PRECISIONS` that the runtime runs on
            this machine. ``int8`` needs a quantized file, the others a
            float file. Defaults to ``'fp32'``.
        threads (int, optional): CPU threads; the runtime's choice if None.
            Defaults to None.

    Returns:
        RuntimeSession: Call it with one array or tensor per input; it
        returns a list of NumPy arrays, one per output.

    Raises:
        ValueError: If the runtime, the precision or the file's kind
            (quantized or float) does not fit, or the file is missing.
    """
    check_precision(runtime, precision)
    if not osp.isfile(path):
        raise ValueError(f'exported file {path} does not exist')
    quantized = is_quantized(path, runtime)
    if quantized and precision != 'int8':
        raise ValueError(f'{path} is a quantized file: open it with '
                         "precision 'int8'")
    if precision == 'int8' and not quantized:
        floats = [p for p in available_precisions(runtime) if p != 'int8']
        raise ValueError(
            f'{path} holds no quantized operators: int8 runs a quantized '
            'file (ONNX QDQ or an NNCF-quantized OpenVINO IR); run this one '
            f"at {', '.join(floats)}")
    if runtime == 'onnxruntime':
        inputs, outputs, run = _open_onnxruntime(path, threads)
    else:
        inputs, outputs, run = _open_openvino(path, precision, threads)
    return RuntimeSession(runtime, precision, path, inputs, outputs, run)
