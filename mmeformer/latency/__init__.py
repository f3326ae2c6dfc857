"""Latency on the user's own device: per-block latency tables of the
EfficientFormerV2 search space and of the published V1 networks, a latency
predictor and per-operator profiles, in PyTorch, ONNX Runtime or OpenVINO.

A table knows a search space, not the search that uses it.
"""
from .accuracy import measure_networks, prediction_errors
from .blocks import (CLASSIFIER_SIZES, V1_ARCHS, Block, arch_blocks,
                     arch_family, block_input_shape, build_block,
                     build_classifier, build_network, parse_key, space_blocks,
                     v1_blocks)
from .build import build_table, table_meta
from .predictor import (PARTS, fit_correction, latency_parts, predict_latency,
                        resolve_arch)
from .table import LatencyTable, LatencyTableError
from .timing import RUNTIMES, best_latencies, check_runtime, device_name

__all__ = [
    'measure_networks', 'prediction_errors', 'CLASSIFIER_SIZES', 'V1_ARCHS',
    'Block', 'arch_blocks', 'arch_family', 'block_input_shape', 'build_block',
    'build_classifier', 'build_network', 'space_blocks', 'v1_blocks',
    'parse_key', 'build_table', 'table_meta', 'PARTS', 'fit_correction',
    'latency_parts', 'predict_latency', 'resolve_arch', 'LatencyTable',
    'LatencyTableError', 'RUNTIMES', 'check_runtime', 'device_name',
    'best_latencies'
]
