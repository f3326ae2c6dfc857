"""What MMDeploy 1.3.1 needs to export with the torch of this stack.

MMDeploy 1.3.1 predates two torch changes:

* torch 2.9 made the dynamo exporter the default of ``torch.onnx.export``;
  it cannot export mmcv's ops, and MMDeploy calls ``torch.onnx.export``
  without ``dynamo``. The shim makes ``dynamo=False`` the default again.
* torch removed ``torch.onnx.symbolic_opset9._cast_Long``, which MMDeploy's
  ``RoIAlign`` symbolic imports. The shim restores it (a ``Cast`` to int64).

:func:`mmdeploy_compat` applies only the shims the installed torch needs,
and only while its block runs.
"""
import functools
import inspect
from contextlib import ExitStack, contextmanager
from typing import Iterator, List

import torch
import torch.onnx.symbolic_opset9 as opset9

__all__ = ['needed_shims', 'mmdeploy_compat']


def _exports_with_dynamo_by_default() -> bool:
    parameter = inspect.signature(torch.onnx.export).parameters.get('dynamo')
    return parameter is not None and parameter.default is True


def _lacks_cast_long() -> bool:
    return not hasattr(opset9, '_cast_Long')


def _cast_long(g, value, non_blocking):
    """The removed ``_cast_Long`` symbolic: a Cast to int64."""
    return g.op('Cast', value, to_i=torch.onnx.TensorProtoDataType.INT64)


@contextmanager
def _torchscript_export_by_default() -> Iterator[None]:
    export = torch.onnx.export
    torch.onnx.export = functools.partial(export, dynamo=False)
    try:
        yield
    finally:
        torch.onnx.export = export


@contextmanager
def _restored_cast_long() -> Iterator[None]:
    opset9._cast_Long = _cast_long
    try:
        yield
    finally:
        del opset9._cast_Long


#: name -> (whether the installed torch needs it, the shim).
_SHIMS = {
    'torchscript_export_by_default':
    (_exports_with_dynamo_by_default, _torchscript_export_by_default),
    'restored_cast_long': (_lacks_cast_long, _restored_cast_long),
}


def needed_shims() -> List[str]:
    """Names of the shims the installed torch needs."""
    return [name for name, (needed, _) in _SHIMS.items() if needed()]


@contextmanager
def mmdeploy_compat() -> Iterator[List[str]]:
    """Apply the needed shims while the block runs; yields their names."""
    names = needed_shims()
    with ExitStack() as stack:
        for name in names:
            stack.enter_context(_SHIMS[name][1]())
        yield names
