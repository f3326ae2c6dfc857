"""Where a whole model spends its time, per operator type, in each runtime:
PyTorch through ``torch.profiler``, ONNX Runtime through its profiler,
OpenVINO through its performance counters."""
import collections
import copy
import json
import os.path as osp
import tempfile
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from mmeformer.models.layers import fuse_conv_bn
from .timing import Runner, check_runtime, torch_threads

__all__ = [
    'OpTime', 'BIAS_GROUP', 'onnxruntime_op_times', 'openvino_op_times',
    'torch_op_times', 'profile_model', 'profile_table'
]

#: The nodes of the in-graph attention-bias resize of dynamic files (named
#: ``.../attn_bias/...`` by the export), grouped whatever their op type.
BIAS_GROUP = 'attention-bias resize'


class OpTime(NamedTuple):
    """One operator type's share of a run.

    Attributes:
        count (float): Calls per run.
        ms (float): Milliseconds per run.
    """
    count: float
    ms: float


def _per_run(counts: Dict[str, int], micros: Dict[str, float],
             runs: int) -> Dict[str, OpTime]:
    return {
        op: OpTime(counts[op] / runs, micros[op] / runs / 1e3)
        for op in micros
    }


def onnxruntime_op_times(onnx_file: str,
                         shape: Optional[Sequence[int]] = None,
                         threads: Optional[int] = None,
                         runs: int = 3) -> Dict[str, OpTime]:
    """Profile ``runs`` runs (after one warm-up) of a one-input ONNX file in
    ONNX Runtime (``SessionOptions.enable_profiling``), per op type.

    Args:
        onnx_file (str): The file.
        shape (Sequence[int], optional): ``(H, W)`` of a dynamic file's
            input. Defaults to None (the file's own).
        threads (int, optional): Intra-op threads. Defaults to None.
        runs (int): Profiled runs. Defaults to 3.

    Returns:
        dict[str, OpTime]: Per op type (and :data:`BIAS_GROUP`), the kernel
        calls and milliseconds per run.

    Raises:
        ValueError: If the file's input is dynamic and ``shape`` is None.
    """
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    with tempfile.TemporaryDirectory() as work_dir:
        options.enable_profiling = True
        options.profile_file_prefix = osp.join(work_dir, 'profile')
        session = ort.InferenceSession(
            onnx_file, options, providers=['CPUExecutionProvider'])
        (model_input, ) = session.get_inputs()
        # One image; a dynamic height and width need ``shape``.
        dims = [1] + list(model_input.shape[1:])
        if shape is not None:
            dims[-2:] = shape
        if not all(isinstance(d, int) for d in dims):
            raise ValueError(f'{onnx_file} has a dynamic input {dims}: '
                             'give --shape H W')
        x = np.random.default_rng(0).standard_normal(dims).astype(np.float32)
        for _ in range(runs + 1):
            session.run(None, {model_input.name: x})
        with open(session.end_profiling()) as f:
            profile = json.load(f)
    starts = sorted(e['ts'] for e in profile if e.get('name') == 'model_run')
    start = starts[1] if len(starts) > 1 else 0
    counts: Dict[str, int] = collections.Counter()
    micros: Dict[str, float] = collections.defaultdict(float)
    for event in profile:
        if (event.get('cat') != 'Node' or event['ts'] < start
                or not event['name'].endswith('_kernel_time')):
            continue
        group = event['args'].get('op_name', 'unknown')
        if '/attn_bias/' in event['name']:
            group = BIAS_GROUP
        counts[group] += 1
        micros[group] += event['dur']
    return _per_run(counts, micros, runs)


def openvino_op_times(path: str,
                      precision: str = 'fp32',
                      threads: Optional[int] = None,
                      runs: int = 3) -> Dict[str, OpTime]:
    """Profile ``runs`` runs (after one warm-up) of a static one-input file
    in OpenVINO's CPU plugin (``PERF_COUNT``), per executed layer type.

    Args:
        path (str): An ``.onnx`` file or ``.xml`` IR with a static input.
        precision (str): ``'fp32'``, ``'fp16'`` or ``'bf16'``, set as the
            inference precision hint. Defaults to ``'fp32'``.
        threads (int, optional): Inference threads. Defaults to None.
        runs (int): Profiled runs. Defaults to 3.

    Returns:
        dict[str, OpTime]: Per layer type (after OpenVINO's fusions), the
        executed layers and milliseconds per run.
    """
    import openvino as ov

    # The precision hints of the deployment runtimes, one table for both.
    from mmeformer.deployment.runtimes import _OPENVINO_HINTS
    check_runtime('openvino', precision)
    config = {
        'PERF_COUNT': True,
        'PERFORMANCE_HINT': 'LATENCY',
        'INFERENCE_PRECISION_HINT': _OPENVINO_HINTS[precision]
    }
    if threads is not None:
        config['INFERENCE_NUM_THREADS'] = threads
    compiled = ov.Core().compile_model(path, 'CPU', config)
    request = compiled.create_infer_request()
    dims = list(compiled.inputs[0].get_shape())
    x = np.random.default_rng(0).standard_normal(dims).astype(np.float32)
    request.infer({0: x})
    counts: Dict[str, int] = collections.Counter()
    micros: Dict[str, float] = collections.defaultdict(float)
    for _ in range(runs):
        request.infer({0: x})
        for info in request.get_profiling_info():
            if info.status != info.Status.EXECUTED:
                continue
            counts[info.node_type] += 1
            micros[info.node_type] += info.real_time.total_seconds() * 1e6
    return _per_run(counts, micros, runs)


def torch_op_times(model: nn.Module,
                   input_shape: Sequence[int],
                   runs: int = 10,
                   warmup: int = 3) -> Dict[str, OpTime]:
    """Profile ``runs`` eager runs of ``model`` with ``torch.profiler``.

    Args:
        model (nn.Module): In eval mode.
        input_shape (Sequence[int]): Its input ``(N, C, H, W)``.
        runs (int): Profiled runs. Defaults to 10.
        warmup (int): Unprofiled runs first. Defaults to 3.

    Returns:
        dict[str, OpTime]: Per ATen operator, calls and self time (time
        not spent in the operators it calls) per run.
    """
    from torch.profiler import ProfilerActivity, profile
    x = torch.randn(*input_shape)
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(runs):
                model(x)
    counts, micros = {}, {}
    for event in prof.key_averages():
        if event.self_cpu_time_total > 0:
            counts[event.key] = event.count
            micros[event.key] = event.self_cpu_time_total
    return _per_run(counts, micros, runs)


def profile_model(model: nn.Module,
                  input_size: Sequence[int],
                  runtime: str,
                  precision: str = 'fp32',
                  threads: Optional[int] = None,
                  runs: int = 10,
                  work_dir: Optional[str] = None) -> Dict[str, OpTime]:
    """Per-operator profile of a whole model in one runtime, BatchNorm
    folded as in a latency table; exported runtimes run a static ONNX file.

    Args:
        model (nn.Module): In eval mode, one image batch in (e.g.
            :func:`~.blocks.build_network`); left unchanged.
        input_size (Sequence[int]): ``(H, W)``.
        runtime (str): ``'torch'``, ``'onnxruntime'`` or ``'openvino'``.
        precision (str): The precision. Defaults to ``'fp32'``.
        threads (int, optional): CPU threads. Defaults to None.
        runs (int): Profiled runs. Defaults to 10.
        work_dir (str, optional): Folder of the export; temporary if None.

    Returns:
        dict[str, OpTime]: Per operator type.
    """
    check_runtime(runtime, precision)
    shape = (1, 3, *input_size)
    if runtime == 'torch':
        fused = copy.deepcopy(model).eval()
        fuse_conv_bn(fused)
        with torch_threads(threads):
            return torch_op_times(fused, shape, runs)
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(runtime, precision, threads, work_dir or tmp)
        path = runner.export(model, shape, 'profiled')
        if runtime == 'onnxruntime':
            return onnxruntime_op_times(path, threads=threads, runs=runs)
        return openvino_op_times(path, precision, threads, runs)


def profile_table(profiles: Dict[str, Dict[str, OpTime]],
                  top: int = 12) -> List[str]:
    """One markdown table of several runtimes' profiles.

    Args:
        profiles (dict[str, dict[str, OpTime]]): Per runtime, its profile.
        top (int): Op types listed per runtime; the rest are summed as
            ``other``. Defaults to 12.

    Returns:
        list[str]: The lines: runtime, op type, calls per run, ms per run
        and share of the runtime's total.
    """
    lines = [
        '| runtime | op type | count | total (ms) | share |',
        '|---|---|---|---|---|'
    ]
    for runtime, times in profiles.items():
        total = sum(t.ms for t in times.values())
        ranked = sorted(times.items(), key=lambda item: -item[1].ms)
        rows = ranked[:top]
        if len(ranked) > top:
            rest = ranked[top:]
            rows.append(('other',
                         OpTime(
                             sum(t.count for _, t in rest),
                             sum(t.ms for _, t in rest))))
        for name, t in rows:
            lines.append(f'| {runtime} | {name} | {t.count:g} | '
                         f'{t.ms:.3f} | {100 * t.ms / total:.1f}% |')
        lines.append(f'| {runtime} | total | '
                     f'{sum(t.count for t in times.values()):g} | '
                     f'{total:.3f} | 100% |')
    return lines
