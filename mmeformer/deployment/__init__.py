"""Deployment: ONNX (ONNX Runtime, OpenVINO, MMDeploy for detectors) and
Core ML.

The runtimes are optional (``pip install mmeformer[deploy]``); they are
imported only by the functions that use them.
"""
from .coreml import COREML_PRECISIONS, export_coreml
from .detector import export_detector, verify_detector
from .files import MIN_SIZE, atomic_output, check_output_path, check_shape
from .group_norm import ExportGroupNorm, swap_group_norms
from .mmdeploy_compat import mmdeploy_compat, needed_shims
from .onnx_export import (OPSET_RANGE, check_opset, compare_outputs,
                          export_onnx, verify_onnx)
from .runtimes import (PRECISIONS, RUNTIME_PRECISIONS, RUNTIMES, TOLERANCES,
                       RuntimeSession, available_precisions, check_precision,
                       is_quantized, onnxruntime_session, open_session)
from .wrappers import (EXPORT_KINDS, BackboneExport, ClassifierExport,
                       SegmentorExport, build_export_model, default_kind,
                       load_model, traceable_upsamples)

__all__ = [
    'COREML_PRECISIONS', 'export_coreml', 'export_detector', 'verify_detector',
    'MIN_SIZE', 'atomic_output', 'check_output_path', 'check_shape',
    'ExportGroupNorm', 'swap_group_norms', 'mmdeploy_compat', 'needed_shims',
    'OPSET_RANGE', 'check_opset', 'compare_outputs', 'export_onnx',
    'verify_onnx', 'PRECISIONS', 'RUNTIME_PRECISIONS', 'RUNTIMES',
    'TOLERANCES', 'RuntimeSession', 'available_precisions', 'check_precision',
    'is_quantized', 'onnxruntime_session', 'open_session', 'EXPORT_KINDS',
    'BackboneExport', 'ClassifierExport', 'SegmentorExport',
    'build_export_model', 'default_kind', 'load_model', 'traceable_upsamples'
]
