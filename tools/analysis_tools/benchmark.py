"""Benchmark the EfficientFormer variants: parameters, MACs, CPU latency of
eager and fused PyTorch and of the exported ONNX Runtime / OpenVINO files."""
import argparse
import copy
import gc
import logging
import os.path as osp
import platform
import statistics
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, TextIO, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import get_model_complexity_info
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

from mmeformer.runtime import check_input_size, exit_on_setup_error
from mmeformer.testing import randomize_weights
from mmeformer.utils import quiet_host_warnings

#: name -> (backbone type, arch, published classifier GMACs at 224).
VARIANTS: Dict[str, tuple] = {
    'l1': ('EfficientFormer', 'l1', 1.3),
    'l3': ('EfficientFormer', 'l3', 3.9),
    'l7': ('EfficientFormer', 'l7', 10.2),
    's0': ('EfficientFormerV2', 's0', 0.40),
    's1': ('EfficientFormerV2', 's1', 0.65),
    's2': ('EfficientFormerV2', 's2', 1.25),
    'l': ('EfficientFormerV2', 'l', 2.56),
}

EPILOG = """\
Two models per variant, built without weights (numbers do not depend on them):
  * the ImageNet classifier (backbone with final norm, global average pooling,
    EfficientFormerClsHead with both heads), counted and timed at --cls-size;
  * the dense backbone as the detection configs use it (four outputs,
    attention biases for an 800 input, the family's dense_out_norm_cfg:
    V1's per-output GroupNorm),
    counted and timed at --dense-size.
Runtimes (--runtimes), each at the precisions of --precisions that it
can run on this machine (mmeformer.deployment.runtimes):
  eager        PyTorch fp32, eval mode (resized attention biases are cached
               after the first pass);
  fused        the same after switch_to_deploy() (BatchNorm folded);
  ort-static   ONNX Runtime on the fused model exported at the timed size,
               attention biases baked in (fp32);
  ort-dynamic  ONNX Runtime on the dynamic-shape export, which resizes the
               biases in the graph on every run (fp32);
  openvino     OpenVINO on the static file, with INFERENCE_PRECISION_HINT set
               to the precision (fp32: f32; bf16 and fp16 where the CPU has
               them). Without a hint OpenVINO runs bf16 on CPUs with
               AVX512_BF16 or AMX.
int8 (--precisions int8) times the static file quantized by NNCF
(mmeformer.deployment.quantize_network: transformer model type, NNCF's
mixed preset, or --int8-preset; --int8-ignored-types kept in float) on
--int8-samples random inputs: an
OpenVINO IR for openvino, an ONNX QDQ file for ort-static (ort-dynamic has
no int8 lane). The calibration decides the int8 ranges, not the kernels, so
the time holds for a file calibrated on data; its deviation from PyTorch
does not tell an accuracy (score a file calibrated on data with
tools/deployment/test_backend.py for that).
The weights are random with every path active (mmeformer.testing:
attention-bias tables, layer scales of 0.1-0.5, BatchNorm statistics); the
times do not depend on them, the deviations do. Before it is timed, every
exported runtime at every precision is compared with fused fp32 PyTorch on
a random input of the timed size; a cell "ms (d)" gives its time and d,
max |runtime - PyTorch| over the outputs relative to the output's max
magnitude. fp32 must be within 1e-4, fp16 1e-2, bf16 3e-2, or the tool
stops; int8 is reported, not bounded. All runtimes use
--threads threads; ONNX Runtime's worker threads do not spin between runs,
so that they do not slow the runtime timed next, and OpenVINO (whose
threads do) is timed in a block of its own after the others. "best fp32" is
the fused time over the fastest fp32 runtime's; "best bf16" (fp16, int8)
over the fastest bf16 (fp16, int8) runtime's, and in brackets the fastest
fp32 runtime's time over it.

MACs come from mmengine.analysis.get_model_complexity_info, which counts one
multiply-accumulate as one "flop" and skips ops it has no formula for
(normalisations, the bicubic resize of attention biases at non-reference
sizes). Latency is the median wall time of --repeats runs on one image
after --warmup untimed runs; the other runtimes alternate run by run, so
that a changing machine load affects them alike. Rows are printed as they
finish.

examples:
  python tools/analysis_tools/benchmark.py --threads 2 --precisions fp32 bf16
  python tools/analysis_tools/benchmark.py --variants s0 s2 --models dense \
      --runtimes fused ort-static --threads 2
  python tools/analysis_tools/benchmark.py --runtimes fused ort-static \
      openvino --precisions fp32 int8 --threads 2
"""

RUNTIMES = ('eager', 'fused', 'ort-static', 'ort-dynamic', 'openvino')
#: Exported runtimes: name -> (runtime package, exported file).
EXPORTED = {
    'ort-static': ('onnxruntime', 'static'),
    'ort-dynamic': ('onnxruntime', 'dynamic'),
    'openvino': ('openvino', 'static'),
}
MODELS = ('classifier', 'dense')
#: Precisions timed here: the float files as exported, int8 quantized.
TIMED_PRECISIONS = ('fp32', 'fp16', 'bf16', 'int8')
#: The exported runtimes that time an int8 file (the static one).
INT8_RUNTIMES = ('ort-static', 'openvino')


def parse_args(
        argv=None) -> Tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        description='Parameters, MACs and CPU latency (eager and fused) of '
        'the EfficientFormer V1/V2 variants; prints a markdown table.',
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        '--variants',
        nargs='+',
        choices=list(VARIANTS),
        default=list(VARIANTS),
        help='variants to benchmark (default: all seven)')
    parser.add_argument(
        '--models',
        nargs='+',
        choices=MODELS,
        default=list(MODELS),
        help='models to time: the classifier at --cls-size, the dense '
        'backbone at --dense-size (default: both)')
    parser.add_argument(
        '--runtimes',
        nargs='+',
        choices=RUNTIMES,
        default=list(RUNTIMES),
        help='runtimes to time (default: all; those whose package is '
        'missing are skipped with a note)')
    parser.add_argument(
        '--precisions',
        nargs='+',
        default=['fp32'],
        metavar='PRECISION',
        help='precisions of the exported runtimes: fp32 (always timed), '
        'fp16, bf16, int8; each runtime runs those it can on this machine '
        '(default: fp32)')
    parser.add_argument(
        '--int8-samples',
        type=int,
        default=8,
        help='random inputs NNCF calibrates the int8 files on (default: 8)')
    parser.add_argument(
        '--int8-preset',
        choices=('mixed', 'performance'),
        help="NNCF preset of the int8 files (default: NNCF's for "
        'transformers, mixed)')
    parser.add_argument(
        '--int8-ignored-types',
        nargs='+',
        default=[],
        metavar='TYPE',
        help='operation types the int8 files keep in float, e.g. '
        'GroupConvolution (OpenVINO) or Conv (ONNX)')
    parser.add_argument(
        '--cls-size',
        type=int,
        nargs=2,
        default=(224, 224),
        metavar=('H', 'W'),
        help='classifier input size (default: 224 224)')
    parser.add_argument(
        '--dense-size',
        type=int,
        nargs=2,
        default=(800, 1216),
        metavar=('H', 'W'),
        help='dense backbone input size (default: 800 1216)')
    parser.add_argument(
        '--repeats',
        type=int,
        default=10,
        help='timed forward passes per measurement (default: 10)')
    parser.add_argument(
        '--warmup',
        type=int,
        default=3,
        help='untimed forward passes before timing (default: 3)')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='CPU threads of every runtime (default: torch\'s own choice)')
    parser.add_argument(
        '--out', help='also write the markdown table to this file')
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error('--repeats must be >= 1 and --warmup >= 0')
    if args.int8_samples < 1:
        parser.error('--int8-samples must be >= 1')
    for precision in args.precisions:
        if precision not in TIMED_PRECISIONS:
            parser.error(f'--precisions {precision}: unknown precision; '
                         f"choose from {', '.join(TIMED_PRECISIONS)}")
    # The fp32 runtimes are the reference of the others and of "best".
    args.precisions = [
        p for p in TIMED_PRECISIONS if p == 'fp32' or p in args.precisions
    ]
    if 'fused' not in args.runtimes:
        # The speed-up column and every exported file are relative to it.
        args.runtimes = ['fused'] + list(args.runtimes)
    return parser, args


def build_classifier(backbone_type: str, arch: str) -> nn.Module:
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    channels = MODELS.get(f'mmeformer.{backbone_type}').parse_arch(
        arch)['channels'][-1]
    return MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(
                type=f'mmeformer.{backbone_type}', arch=arch, final_norm=True),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(
                type='mmeformer.EfficientFormerClsHead',
                num_classes=1000,
                in_channels=channels))).eval()


def build_dense_backbone(backbone_type: str, arch: str) -> nn.Module:
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    backbone_cls = MODELS.get(f'mmeformer.{backbone_type}')
    return MODELS.build(
        dict(
            type=f'mmeformer.{backbone_type}',
            arch=arch,
            out_indices=(0, 1, 2, 3),
            attn_ref_size=800,
            out_norm_cfg=backbone_cls.dense_out_norm_cfg)).eval()


#: model -> its builder.
BUILDERS = dict(classifier=build_classifier, dense=build_dense_backbone)


def input_sizes(args: argparse.Namespace) -> Dict[str, Tuple[int, int]]:
    """The input size of each model of ``--models``, refused if a variant
    of ``--variants`` cannot take it: the MAC counter and the export trace
    the model, and a trace skips the backbone's own check.

    Returns:
        dict: model -> ``(height, width)``.

    Raises:
        UnsupportedOptionError: Naming the option and the least size.
    """
    options = dict(
        classifier=('--cls-size', args.cls_size),
        dense=('--dense-size', args.dense_size))
    sizes = {}
    for model_name in args.models:
        option, size = options[model_name]
        for name in args.variants:
            backbone_type, arch, _ = VARIANTS[name]
            with torch.device('meta'):
                model = BUILDERS[model_name](backbone_type, arch)
            sizes[model_name] = check_input_size(model, size, option)
    return sizes


def count_macs(model: nn.Module, size: Sequence[int]) -> float:
    logger = MMLogger.get_current_instance()
    level = logger.level
    # The counter warns about every op it has no formula for (norms, the
    # bicubic bias resize); the epilog states that they are not counted.
    logger.setLevel(logging.ERROR)
    try:
        info = get_model_complexity_info(
            model,
            inputs=(torch.randn(1, 3, *size), ),
            show_table=False,
            show_arch=False)
    finally:
        logger.setLevel(level)
    return info['flops']


def latencies_ms(runs: Sequence[Callable[[], object]], repeats: int,
                 warmup: int) -> List[float]:
    """Median time of each run, interleaved so that a changing machine load
    affects them alike."""
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
    return [statistics.median(t) for t in times]


def lanes_to_time(runtimes: Sequence[str],
                  precisions: Sequence[str]) -> List[Tuple[str, str]]:
    """``(runtime, precision)`` pairs to time; notes the pairs the runtime
    cannot run on this machine."""
    from mmeformer.deployment import check_precision
    lanes = []
    for precision in precisions:
        for name in runtimes:
            if name not in EXPORTED:
                if precision == 'fp32':
                    lanes.append((name, 'fp32'))
                continue
            if precision == 'int8' and name not in INT8_RUNTIMES:
                print(f'skipping {name} int8: int8 is timed on the static '
                      'file')
                continue
            try:
                check_precision(EXPORTED[name][0], precision)
            except ValueError as e:
                print(f'skipping {name} {precision}: {e}')
                continue
            lanes.append((name, precision))
    return lanes


def quantized_file(static_file: str, runtime: str, samples: int,
                   preset: Optional[str], ignored_types: Sequence[str],
                   label: str) -> str:
    """The static file quantized by NNCF on ``samples`` random inputs: an
    OpenVINO IR for ``runtime='openvino'``, an ONNX QDQ file otherwise."""
    from mmeformer.deployment.quantize import (QUANTIZED_FORMATS,
                                               build_ignored_scope,
                                               quantize_network, read_network,
                                               save_quantized)
    from mmeformer.deployment.scoring import read_signature
    (input_name, shape), = read_signature(static_file)[0].items()
    generator = torch.Generator().manual_seed(1)
    inputs = [
        torch.randn(*shape, generator=generator).numpy()
        for _ in range(samples)
    ]
    quantized_format = 'openvino' if runtime == 'openvino' else 'onnx'
    network = read_network(static_file, quantized_format)
    start = time.perf_counter()
    # NNCF reports every step at INFO; keep the table's log readable.
    logging.getLogger('nncf').setLevel(logging.WARNING)
    quantized = quantize_network(
        network,
        inputs,
        input_name,
        ignored_scope=build_ignored_scope(types=ignored_types),
        preset=preset)
    path = save_quantized(
        quantized,
        osp.splitext(static_file)[0] + f'_int8_{runtime}' +
        QUANTIZED_FORMATS[quantized_format])
    print(f'{label}: {runtime} int8 file quantized on {samples} random '
          f'inputs in {time.perf_counter() - start:.0f} s')
    return path


def exported_runs(
    fused: nn.Module,
    x: torch.Tensor,
    lanes: Sequence[Tuple[str, str]],
    threads: int,
    work_dir: str,
    label: str,
    int8_samples: int = 8,
    int8_preset: Optional[str] = None,
    int8_ignored_types: Sequence[str] = ()
) -> Dict[tuple, tuple]:
    """Export the fused model as ``lanes`` need and open each exported lane
    (an int8 lane: the static file quantized, see :func:`quantized_file`).

    Every lane is compared with fused fp32 PyTorch at the timed size first.

    Returns:
        dict: ``(runtime, precision)`` -> (run closure, deviation).
    """
    from mmeformer.deployment import (BackboneExport, ClassifierExport,
                                      export_onnx, open_session, verify_onnx)
    wrapper = (ClassifierExport(fused)
               if hasattr(fused, 'head') else BackboneExport(fused)).eval()
    size = tuple(x.shape[2:])
    files = {}
    for name, precision in lanes:
        if name not in EXPORTED:
            continue
        kind = EXPORTED[name][1]
        if kind not in files:
            files[kind] = osp.join(work_dir, f'{kind}.onnx')
            export_onnx(wrapper, size, files[kind], dynamic=kind == 'dynamic')
            megabytes = osp.getsize(files[kind]) / 1e6
            print(f'{label}: {kind} file {megabytes:.1f} MB')
    runs = {}
    inputs = x.numpy()
    for name, precision in lanes:
        if name not in EXPORTED:
            continue
        runtime, kind = EXPORTED[name]
        path = files[kind]
        if precision == 'int8':
            path = quantized_file(path, runtime, int8_samples, int8_preset,
                                  int8_ignored_types, label)
        session = open_session(path, runtime, precision, threads)
        (_, deviation), = verify_onnx(wrapper, session, [size])
        print(f'{label}: {name} {precision} is within {deviation:.1e} of '
              'fused fp32 PyTorch')
        runs[name, precision] = (lambda s=session: s(inputs)), deviation
    return runs


def available_runtimes(runtimes: Sequence[str]) -> List[str]:
    """The runtimes whose packages are installed; notes the others."""
    available = []
    for name in runtimes:
        try:
            if name in EXPORTED:
                __import__(EXPORTED[name][0])
            available.append(name)
        except ImportError:
            print(f'skipping {name}: {EXPORTED[name][0]} is not installed '
                  '(pip install -r requirements/deploy.txt)')
    return available


def fused_copy(model: nn.Module, size: Sequence[int]) -> nn.Module:
    """A deploy-mode copy, checked against the eager model (within 1e-4 of
    each output's magnitude)."""
    from mmeformer.deployment import compare_outputs
    fused = copy.deepcopy(model)
    backbone = getattr(fused, 'backbone', fused)
    backbone.switch_to_deploy()
    x = torch.randn(1, 3, *size)
    with torch.inference_mode():
        ref, out = model(x), fused(x)
    ref = [ref] if isinstance(ref, torch.Tensor) else list(ref)
    out = [out] if isinstance(out, torch.Tensor) else list(out)
    deviation = max(compare_outputs(ref, [o.numpy() for o in out]))
    if deviation > 1e-4:
        raise RuntimeError(f'fused model deviates by {deviation:.2e} of the '
                           'output magnitude')
    return fused


def time_model(model: nn.Module, size: Sequence[int],
               lanes: Sequence[Tuple[str, str]], args: argparse.Namespace,
               work_dir: str, label: str) -> Dict[tuple, tuple]:
    """Median latency of ``model`` at ``size`` in each lane.

    Returns:
        dict: ``(runtime, precision)`` -> (ms, deviation from PyTorch, or
        None for PyTorch itself).
    """
    x = torch.randn(1, 3, *size)
    fused = fused_copy(model, size)
    runs = {
        ('eager', 'fp32'): ((lambda: model(x)), None),
        ('fused', 'fp32'): ((lambda: fused(x)), None)
    }
    runs.update(
        exported_runs(fused, x, lanes, torch.get_num_threads(), work_dir,
                      label, args.int8_samples, args.int8_preset,
                      args.int8_ignored_types))
    # OpenVINO's worker threads keep the cores busy after a run, which
    # would slow whatever is timed next: it gets a block of its own.
    blocks = [[lane for lane in lanes if lane[0] != 'openvino'],
              [lane for lane in lanes if lane[0] == 'openvino']]
    times = {}
    for block in filter(None, blocks):
        times.update(
            zip(
                block,
                latencies_ms([runs[lane][0] for lane in block], args.repeats,
                             args.warmup)))
    return {lane: (times[lane], runs[lane][1]) for lane in lanes}


def row_cells(results: Dict[tuple, tuple], lanes: Sequence[Tuple[str, str]],
              precisions: Sequence[str], digits: int) -> List[str]:
    """Time (and deviation) of each lane, then each precision's best."""
    cells = []
    for precision in precisions:
        for lane in lanes:
            if lane[1] == precision:
                ms, deviation = results[lane]
                cell = f'{ms:.{digits}f}'
                if deviation is not None:
                    cell += f' ({deviation:.1e})'
                cells.append(cell)
        own = {
            lane: results[lane][0]
            for lane in lanes if lane[1] == precision
        }
        best = min(own, key=own.get)
        cell = f"{results['fused', 'fp32'][0] / own[best]:.2f}x {best[0]}"
        if precision != 'fp32':
            best_fp32 = min(
                ms for (_, p), (ms, _) in results.items() if p == 'fp32')
            cell += f' ({best_fp32 / own[best]:.2f}x best fp32)'
        cells.append(cell)
    return cells


def main(argv=None) -> None:
    quiet_host_warnings()
    parser, args = parse_args(argv)
    with exit_on_setup_error(parser):
        # Before anything is timed or written.
        sizes = input_sizes(args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    lanes = lanes_to_time(available_runtimes(args.runtimes), args.precisions)
    precisions = [p for p in args.precisions if any(p == q for _, q in lanes)]
    header = [
        'variant', 'model', 'params (M)', 'MACs (G)', 'published (G, diff)'
    ]
    for precision in precisions:
        header += [
            f'{name} {precision}' for name, lane_precision in lanes
            if lane_precision == precision
        ]
        header += [f'best {precision}']
    machine = (f'{platform.processor() or platform.machine()}, '
               f'{torch.get_num_threads()} threads, torch '
               f'{torch.__version__} (float32 matmul precision '
               f'{torch.get_float32_matmul_precision()}){versions()}, '
               f'median of {args.repeats} timed runs after {args.warmup} '
               'warm-up runs, batch 1; ms, and in brackets the max deviation '
               'from fused fp32 PyTorch relative to the output magnitude')
    out = open(args.out, 'w') if args.out else None
    emit('| ' + ' | '.join(header) + ' |', out)
    emit('|' + '|'.join('---' for _ in header) + '|', out)
    for name in args.variants:
        backbone_type, arch, published = VARIANTS[name]
        label = f"{'V1' if backbone_type == 'EfficientFormer' else 'V2'}-" \
                f'{arch.upper()}'
        for model_name in args.models:
            build = BUILDERS[model_name]
            model = randomize_weights(build(backbone_type, arch))
            size = sizes[model_name]
            tag = 'x'.join(map(str, size))
            params = sum(p.numel() for p in model.parameters())
            macs = count_macs(model, size) / 1e9
            row = [
                label, f'{tag} {model_name}', f'{params / 1e6:.2f}',
                f'{macs:.2f}',
                f'{published} ({100 * (macs / published - 1):+.1f}%)'
                if model_name == 'classifier' and size == (224, 224) else '-'
            ]
            with tempfile.TemporaryDirectory() as work_dir:
                results = time_model(model, size, lanes, args, work_dir,
                                     f'{label} {tag} {model_name}')
            row += row_cells(results, lanes, precisions,
                             1 if model_name == 'classifier' else 0)
            emit('| ' + ' | '.join(row) + ' |', out)
            del model
            gc.collect()
    emit(f'\n{machine}', out)
    if out is not None:
        out.close()


def versions() -> str:
    """The versions of the installed exported runtimes."""
    names = {'onnxruntime': 'ONNX Runtime', 'openvino': 'OpenVINO'}
    found = []
    for package, name in names.items():
        try:
            module = __import__(package)
        except ImportError:
            continue
        found.append(f"{name} {module.__version__.split('-')[0]}")
    return ''.join(f', {v}' for v in found)


def emit(line: str, out: Optional[TextIO]) -> None:
    """Print a line and, when writing to a file, append it there too."""
    print(line, flush=True)
    if out is not None:
        out.write(line + '\n')
        out.flush()


if __name__ == '__main__':
    main()
