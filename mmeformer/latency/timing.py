"""Time modules in a runtime: PyTorch eager with BatchNorm folded, or the
module exported to ONNX and run in ONNX Runtime or OpenVINO."""
import copy
import os.path as osp
import platform
import time
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
import torch.nn as nn

from mmeformer.models.layers import fuse_conv_bn
from mmeformer.version import __version__

__all__ = [
    'RUNTIMES', 'check_runtime', 'device_name', 'runtime_versions',
    'best_latencies', 'Runner', 'torch_threads'
]

#: Runtimes a table is measured in: PyTorch eager on the CPU with BatchNorm
#: folded into the convolutions, and the exported file in ONNX Runtime or
#: OpenVINO (CPU).
RUNTIMES = ('torch', 'onnxruntime', 'openvino')


def check_runtime(runtime: str, precision: str) -> None:
    """Refuse a runtime or precision that cannot be timed here.

    Raises:
        ValueError: Naming the runtimes or precisions that can, or the
            requirements file of a runtime that is not installed.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f'unknown runtime {runtime!r}; choose one of '
                         f"{', '.join(RUNTIMES)}")
    if runtime == 'torch':
        if precision != 'fp32':
            raise ValueError(f'the torch runtime runs fp32 only, not '
                             f'{precision!r}; time other precisions in '
                             'onnxruntime or openvino')
        return
    from mmeformer.deployment import check_precision
    check_precision(runtime, precision)
    if precision == 'int8':
        raise ValueError(
            'int8 tables are not supported: a quantized file is calibrated '
            'per network, not per block; time fp32, fp16 or bf16')


def device_name() -> str:
    """The CPU model, as ``/proc/cpuinfo`` or the platform names it."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def runtime_versions(runtime: str) -> Dict[str, str]:
    """Versions of what a measurement in ``runtime`` depends on."""
    versions = dict(
        python=platform.python_version(),
        torch=torch.__version__,
        mmeformer=__version__)
    if runtime != 'torch':
        module = __import__(runtime)
        versions[runtime] = module.__version__
    return versions


@contextmanager
def torch_threads(threads: Optional[int]) -> Iterator[int]:
    """Run the block with ``threads`` torch threads (None: unchanged);
    yields the number used."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def best_latencies(runs: Sequence[Callable[[], object]], repeats: int,
                   warmup: int) -> List[float]:
    """The fastest milliseconds of each run, the runs interleaved so that a
    changing machine load affects them alike.

    The fastest of several runs, not the median: other processes only ever
    add time, and on a shared machine the median measures them as much as
    the run (the convention of Python's ``timeit``).

    Args:
        runs (Sequence[Callable]): Functions of no arguments.
        repeats (int): Timed calls of each.
        warmup (int): Untimed calls of each first.

    Returns:
        list[float]: The fastest time of each run.
    """
    times: List[List[float]] = [[] for _ in runs]
    with torch.inference_mode():
        for _ in range(warmup):
            for run in runs:
                run()
        for _ in range(repeats):
            for run, run_times in zip(runs, times):
                start = time.perf_counter()
                run()
                run_times.append((time.perf_counter() - start) * 1e3)
    return [min(t) for t in times]


class _Export(nn.Module):
    """A module with one tensor output, as the ONNX export takes it."""

    output_names = ('output', )

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x)
        return out[-1] if isinstance(out, (tuple, list)) else out


class Runner:
    """Turns an eval-mode module into a timed run in one runtime.

    Every runtime runs the module with its BatchNorm folded
    (:func:`~mmeformer.models.layers.fuse_conv_bn`): eagerly in PyTorch, or
    exported to ONNX (static shape, attention biases as constants) and
    opened with :func:`mmeformer.deployment.open_session`.

    Args:
        runtime (str): One of :data:`RUNTIMES`.
        precision (str): The precision (see :func:`check_runtime`).
        threads (int, optional): Threads of the exported runtimes (the
            torch runtime uses torch's, see :func:`torch_threads`).
        work_dir (str, optional): Folder of the exported files; needed by
            the exported runtimes.
    """

    def __init__(self,
                 runtime: str,
                 precision: str = 'fp32',
                 threads: Optional[int] = None,
                 work_dir: Optional[str] = None) -> None:
        check_runtime(runtime, precision)
        if runtime != 'torch' and work_dir is None:
            raise ValueError(f'{runtime} runs exported files: give work_dir')
        self.runtime = runtime
        self.precision = precision
        self.threads = threads
        self.work_dir = work_dir

    def export(self, module: nn.Module, input_shape: Sequence[int],
               name: str) -> str:
        """Export ``module`` folded, for ``input_shape`` ``(1, C, H, W)``;
        an existing ``<name>.onnx`` in ``work_dir`` is reused."""
        from mmeformer.deployment import export_onnx
        path = osp.join(self.work_dir, f'{name}.onnx')
        if not osp.isfile(path):
            fused = copy.deepcopy(module).eval()
            fuse_conv_bn(fused)
            export_onnx(
                _Export(fused),
                input_shape[2:],
                path,
                in_channels=input_shape[1])
        return path

    def prepare(self, module: nn.Module, input_shape: Sequence[int],
                name: str) -> Callable[[], object]:
        """A function that runs ``module`` once on a fixed random input.

        Args:
            module (nn.Module): In eval mode; left unchanged.
            input_shape (Sequence[int]): Its input ``(1, C, H, W)``.
            name (str): A file-name-safe name (of the export).

        Returns:
            Callable: Runs it once.
        """
        x = torch.randn(*input_shape)
        if self.runtime == 'torch':
            fused = copy.deepcopy(module).eval()
            fuse_conv_bn(fused)
            return lambda: fused(x)
        from mmeformer.deployment import open_session
        session = open_session(
            self.export(module, input_shape, name), self.runtime,
            self.precision, self.threads)
        inputs = x.numpy()
        return lambda: session(inputs)
