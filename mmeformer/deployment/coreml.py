"""Convert to Core ML at a fixed input size."""
from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn

from mmeformer.models.layers.attention_bias import constant_attention_bias
from mmeformer.runtime import SetupError
from .files import atomic_output, check_output_path, check_shape

__all__ = ['COREML_PRECISIONS', 'export_coreml']


@contextmanager
def _int_of_one_element_constants() -> Iterator[None]:
    """Let coremltools convert ``int()`` of a one-element constant array.

    coremltools 9.0 holds traced sizes (``height * width``) as shape-(1,)
    constants and converts them with ``int(array)``, which NumPy >= 2.3
    refuses; the converter of ``aten::Int`` takes ``.item()`` for those
    while the block runs and is restored afterwards.
    """
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.frontend.torch.torch_op_registry import \
        _TORCH_OPS_REGISTRY
    registry = _TORCH_OPS_REGISTRY.name_to_func_mapping
    originals = {name: registry[name] for name in ('int', '_int')}

    def int_op(context, node):
        x = context[node.inputs[0]]
        if x.can_be_folded_to_const() and np.ndim(x.val) > 0:
            context.add(
                mb.const(val=int(np.asarray(x.val).item()), name=node.name))
        else:
            originals['int'](context, node)

    registry.update(dict.fromkeys(originals, int_op))
    try:
        yield
    finally:
        registry.update(originals)


#: Compute precisions of a Core ML package.
COREML_PRECISIONS = ('fp32', 'fp16')


def export_coreml(model: nn.Module,
                  shape: Sequence[int],
                  output_file: str,
                  precision: str = 'fp32') -> str:
    """Convert a wrapper of :mod:`mmeformer.deployment.wrappers` to a Core ML
    ML program (``.mlpackage``) for one input size.

    The model is traced with its attention biases as constants and converted
    by coremltools; conversion runs anywhere, prediction needs macOS. The
    package computes at ``precision``, named explicitly: coremltools' own
    default for an ML program is float16.

    Args:
        model (nn.Module): The wrapper, with ``output_names``; it is put in
            eval mode.
        shape (Sequence[int]): Input ``(H, W)``.
        output_file (str): The ``.mlpackage`` path; its folder must exist.
        precision (str): Compute precision, ``'fp32'`` or ``'fp16'``.
            Defaults to ``'fp32'``.

    Returns:
        str: The absolute path written.

    Raises:
        SetupError: On another precision, before anything is converted.
    """
    if precision not in COREML_PRECISIONS:
        raise SetupError(f'a Core ML package computes in fp32 or fp16, not '
                         f'{precision}')
    import coremltools as ct
    height, width = check_shape(shape)
    output_file = check_output_path(output_file)
    x = torch.randn(1, 3, height, width)
    model.eval()
    with torch.no_grad(), constant_attention_bias():
        traced = torch.jit.trace(model, x)
    with _int_of_one_element_constants():
        mlmodel = ct.convert(
            traced,
            inputs=[ct.TensorType(name='input', shape=tuple(x.shape))],
            outputs=[ct.TensorType(name=name) for name in model.output_names],
            convert_to='mlprogram',
            compute_precision=(ct.precision.FLOAT32 if precision == 'fp32' else
                               ct.precision.FLOAT16),
            minimum_deployment_target=ct.target.iOS15)
    with atomic_output(output_file) as tmp:
        mlmodel.save(tmp)
    return output_file
