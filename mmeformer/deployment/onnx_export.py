"""Export to ONNX and compare a runtime, at a precision, with PyTorch."""
from contextlib import nullcontext
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn

from mmeformer.models.layers.attention_bias import constant_attention_bias
from mmeformer.runtime import SetupError
from .files import atomic_output, check_output_path, check_shape
from .runtimes import TOLERANCES, RuntimeSession, open_session

__all__ = [
    'OPSET_RANGE', 'check_opset', 'export_onnx', 'compare_outputs',
    'verify_onnx'
]

#: Opsets the export supports: Range (the in-graph bias resize) needs 11,
#: and 20 is the last the TorchScript exporter writes.
OPSET_RANGE = (11, 20)


def check_opset(opset_version: int) -> None:
    """Refuse an opset outside :data:`OPSET_RANGE` with a clear error."""
    low, high = OPSET_RANGE
    if not low <= opset_version <= high:
        raise SetupError(
            f'opset {opset_version} is not supported: the export needs an '
            f'opset from {low} to {high}')


def export_onnx(model: nn.Module,
                shape: Sequence[int],
                output_file: str,
                dynamic: bool = False,
                opset_version: int = 17,
                in_channels: int = 3) -> str:
    """Export a wrapper of :mod:`mmeformer.deployment.wrappers` to ONNX.

    A static export (``dynamic=False``) holds each attention's per-offset
    bias table and computes the bias of ``shape`` from it with constant
    indices (and, off the reference grid, constant resize taps and
    weights), which ONNX Runtime and OpenVINO fold into a constant when
    they load the file. A dynamic one takes any batch, height and width
    (32 px and up) and gathers and resizes the biases in the graph, as
    PyTorch does up to float rounding. Both hold the tables, not the
    gathered biases or their ``(Nq, Nk)`` indices. The file appears only
    once complete.

    Args:
        model (nn.Module): The wrapper, with ``output_names``; it is put in
            eval mode.
        shape (Sequence[int]): ``(H, W)`` traced (static: the only size).
        output_file (str): The ``.onnx`` path; its folder must exist.
        dynamic (bool): Dynamic batch, height and width. Defaults to False.
        opset_version (int): ONNX opset, in :data:`OPSET_RANGE`.
            Defaults to 17.
        in_channels (int): Channels of the input: 3 for an image, at least
            :data:`~.files.MIN_SIZE` pixels a side; any other number for
            the feature map of a single block, of any size. Defaults to 3.

    Returns:
        str: The absolute path written.

    Raises:
        SetupError: On a too small shape, an unsupported opset or a missing
            output folder, before anything is written.
    """
    if in_channels == 3:
        height, width = check_shape(shape)
    else:
        height, width = (int(side) for side in shape)
    check_opset(opset_version)
    output_file = check_output_path(output_file)
    # torch.onnx.export restores the wrapper's own mode on the whole model
    # afterwards: a wrapper left in training mode would switch it there.
    model.eval()
    names = list(model.output_names)
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {'input': {0: 'batch', 2: 'height', 3: 'width'}}
        dynamic_axes.update({name: {0: 'batch'} for name in names})
    x = torch.randn(1, in_channels, height, width)
    biases = nullcontext() if dynamic else constant_attention_bias()
    with atomic_output(output_file) as tmp, torch.no_grad(), biases:
        # The dynamo exporter (the default since torch 2.9) cannot export
        # mmcv ops; the TorchScript exporter can.
        torch.onnx.export(
            model, (x, ),
            tmp,
            input_names=['input'],
            output_names=names,
            dynamic_axes=dynamic_axes,
            opset_version=opset_version,
            do_constant_folding=True,
            dynamo=False)
    return output_file


def compare_outputs(expected: Sequence[torch.Tensor],
                    actual: Sequence[np.ndarray]) -> List[float]:
    """``max |actual - expected| / max |expected|`` of each output pair.

    Raises:
        AssertionError: If the outputs differ in number or shape.
    """
    if len(expected) != len(actual):
        raise AssertionError(f'{len(actual)} outputs, PyTorch has '
                             f'{len(expected)}')
    errors = []
    for ref, out in zip(expected, actual):
        ref = ref.detach().cpu().numpy()
        if ref.shape != out.shape:
            raise AssertionError(
                f'output of shape {out.shape}, PyTorch {ref.shape}')
        scale = max(float(np.abs(ref).max()), np.finfo(np.float32).tiny)
        errors.append(
            float(np.abs(out.astype(np.float64) - ref).max()) / scale)
    return errors


def verify_onnx(model: nn.Module,
                onnx_file: Union[str, RuntimeSession],
                shapes: Sequence[Tuple[int, int]],
                tolerance: Optional[float] = None,
                seed: int = 0,
                runtime: str = 'onnxruntime',
                precision: str = 'fp32',
                batch_size: int = 1) -> List[Tuple[Tuple[int, int], float]]:
    """Compare a runtime at a precision with fp32 PyTorch on random inputs.

    Args:
        model (nn.Module): The exported wrapper (float32).
        onnx_file (str | RuntimeSession): Its exported file, or the file
            opened with :func:`~.runtimes.open_session` (whose runtime and
            precision then replace ``runtime`` and ``precision``).
        shapes (Sequence[tuple[int, int]]): Input sizes ``(H, W)``.
        tolerance (float, optional): Largest allowed max abs difference
            relative to the output's max magnitude; None for the
            precision's :data:`~.runtimes.TOLERANCES` entry (1e-4 for fp32;
            an int8 file is not bounded). Defaults to None.
        seed (int): Seed of the random inputs. Defaults to 0.
        runtime (str): ``'onnxruntime'`` or ``'openvino'``.
            Defaults to ``'onnxruntime'``.
        precision (str): The precision it runs at; see
            :func:`~.runtimes.open_session`. Defaults to ``'fp32'``.
        batch_size (int): Images per input (a static file takes 1).
            Defaults to 1.

    Returns:
        list[tuple[tuple[int, int], float]]: The worst relative difference
        over the outputs, per shape.

    Raises:
        AssertionError: If a shape differs by more than ``tolerance``.
        ValueError: If the runtime cannot run the precision here.
    """
    session = onnx_file
    if not isinstance(session, RuntimeSession):
        session = open_session(onnx_file, runtime, precision)
    runtime, precision = session.runtime, session.precision
    if tolerance is None:
        tolerance = TOLERANCES[precision]
    generator = torch.Generator().manual_seed(seed)
    results = []
    for shape in shapes:
        x = torch.randn(batch_size, 3, *shape, generator=generator)
        with torch.no_grad():
            expected = model(x)
        if isinstance(expected, torch.Tensor):
            expected = (expected, )
        error = max(compare_outputs(expected, session(x)))
        if tolerance is not None and not error <= tolerance:
            raise AssertionError(
                f'{session.path} at {shape[0]}x{shape[1]}: {runtime} '
                f'{precision} differs from fp32 PyTorch by {error:.2e} of '
                f'the output magnitude (allowed {tolerance:.0e})')
        results.append((tuple(shape), error))
    return results
