"""Where an ONNX file spends its time in ONNX Runtime, by op type.

Runs the file with ONNX Runtime's profiler (``SessionOptions.
enable_profiling``) and sums the per-node times by op type. The nodes of
the in-graph attention-bias resize of dynamic files (named ``.../attn_bias/
...`` by the export) form a group of their own, whatever their op type.
Shares stay meaningful on a busy machine; absolute times do not.
"""
import argparse
import collections
import json
import os.path as osp
import sys
import tempfile
from typing import Dict, Optional, Sequence

import numpy as np

BIAS_GROUP = 'attention-bias resize'

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
        description='Share of ONNX Runtime time per op type of an ONNX file',
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('onnx_file', help='the .onnx file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='input size of a dynamic file (default: the file\'s own)')
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


def node_times_by_op(profile: Sequence[dict],
                     skip_runs: int = 1) -> Dict[str, float]:
    """Microseconds per op type (and :data:`BIAS_GROUP`) in a profile.

    Args:
        profile (list[dict]): ONNX Runtime's profile events.
        skip_runs (int): Leading ``model_run`` events (warm-up) whose nodes
            are left out. Defaults to 1.
    """
    runs = sorted(e['ts'] for e in profile if e.get('name') == 'model_run')
    start = runs[skip_runs] if len(runs) > skip_runs else 0
    totals: Dict[str, float] = collections.defaultdict(float)
    for event in profile:
        if (event.get('cat') != 'Node' or event['ts'] < start
                or not event['name'].endswith('_kernel_time')):
            continue
        group = event['args'].get('op_name', 'unknown')
        if '/attn_bias/' in event['name']:
            group = BIAS_GROUP
        totals[group] += event['dur']
    return dict(totals)


def profile_onnx(onnx_file: str,
                 shape: Optional[Sequence[int]] = None,
                 threads: Optional[int] = None,
                 runs: int = 3) -> Dict[str, float]:
    """Profile ``runs`` runs (after one warm-up) of a one-input file.

    Returns:
        dict: Microseconds per op type over the profiled runs.
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
    return node_times_by_op(profile)


def main(argv=None) -> None:
    parser, args = parse_args(argv)
    if not osp.isfile(args.onnx_file):
        sys.exit(f'{parser.prog}: error: {args.onnx_file} does not exist')
    try:
        totals = profile_onnx(args.onnx_file, args.shape, args.threads,
                              args.runs)
    except ValueError as e:
        sys.exit(f'{parser.prog}: error: {e}')
    total = sum(totals.values())
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    rows = ranked[:args.top]
    rest = sum(time_us for _, time_us in ranked[args.top:])
    if rest:
        rows.append(('other', rest))
    print('| op type | share |')
    print('|---|---|')
    for name, time_us in rows:
        print(f'| {name} | {100 * time_us / total:.1f}% |')


if __name__ == '__main__':
    main()
