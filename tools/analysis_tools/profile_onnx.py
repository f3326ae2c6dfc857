"""Where an ONNX file spends its time in ONNX Runtime or OpenVINO, by op type.

Runs the file with ONNX Runtime's profiler (``SessionOptions.
enable_profiling``) or OpenVINO's performance counters and sums the per-node
times by op type (:mod:`mmeformer.latency.profile`). In ONNX Runtime the
nodes of the in-graph attention-bias resize of dynamic files (named
``.../attn_bias/...`` by the export) form a group of their own, whatever
their op type. Shares stay meaningful on a busy machine; absolute times do
not. To profile a whole model in PyTorch and both runtimes side by side,
use ``tools/analysis_tools/latency_table.py profile``.
"""
import argparse
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

from mmeformer.latency.profile import (BIAS_GROUP, onnxruntime_op_times,
                                       openvino_op_times, profile_table)
from mmeformer.utils import quiet_host_warnings

__all__ = ['BIAS_GROUP', 'profile_onnx', 'main']

EPILOG = """\
example:
  python tools/deployment/pytorch2onnx.py \\
      configs/detection/maskrcnn_eformerv2_s2_coco.py --kind backbone \\
      --dynamic-export --output-file s2_dynamic.onnx
  python tools/analysis_tools/profile_onnx.py s2_dynamic.onnx \\
      --shape 800 1216 --threads 2
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Share of ONNX Runtime (or OpenVINO) time per op type '
        'of an ONNX file',
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('onnx_file', help='the .onnx file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='input size of a dynamic file (default: the file\'s own; '
        'ONNX Runtime only)')
    parser.add_argument(
        '--runtime',
        choices=('onnxruntime', 'openvino'),
        default='onnxruntime',
        help='the runtime (default: onnxruntime)')
    parser.add_argument(
        '--precision',
        default='fp32',
        help='OpenVINO\'s inference precision (default: fp32)')
    parser.add_argument(
        '--threads', type=int, default=None, help='intra-op threads')
    parser.add_argument(
        '--runs',
        type=int,
        default=3,
        help='profiled runs after one warm-up run (default: 3)')
    parser.add_argument(
        '--top',
        type=int,
        default=12,
        help='op types listed; the rest are summed as "other" (default: 12)')
    return parser, parser.parse_args(argv)


def profile_onnx(onnx_file: str,
                 shape: Optional[Sequence[int]] = None,
                 threads: Optional[int] = None,
                 runs: int = 3) -> Dict[str, float]:
    """Profile ``runs`` runs (after one warm-up) of a one-input file in
    ONNX Runtime.

    Returns:
        dict: Microseconds per op type over the profiled runs.
    """
    times = onnxruntime_op_times(onnx_file, shape, threads, runs)
    return {op: t.ms * runs * 1e3 for op, t in times.items()}


def main(argv=None) -> None:
    quiet_host_warnings()
    parser, args = parse_args(argv)
    if not osp.isfile(args.onnx_file):
        sys.exit(f'{parser.prog}: error: {args.onnx_file} does not exist')
    try:
        if args.runtime == 'onnxruntime':
            times = onnxruntime_op_times(args.onnx_file, args.shape,
                                         args.threads, args.runs)
        else:
            times = openvino_op_times(args.onnx_file, args.precision,
                                      args.threads, args.runs)
    except ValueError as e:
        sys.exit(f'{parser.prog}: error: {e}')
    print('\n'.join(profile_table({args.runtime: times}, args.top)))


if __name__ == '__main__':
    main()
