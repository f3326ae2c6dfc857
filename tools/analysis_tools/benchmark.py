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
from typing import Callable, Dict, List, Optional, Sequence, TextIO

import torch
import torch.nn as nn
from mmengine.analysis import get_model_complexity_info
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

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
Runtimes (--runtimes):
  eager        PyTorch, eval mode (resized attention biases are cached after
               the first pass);
  fused        the same after switch_to_deploy() (BatchNorm folded);
  ort-static   ONNX Runtime on the fused model exported at the timed size,
               attention biases baked in as constants;
  ort-dynamic  ONNX Runtime on the dynamic-shape export, which resizes the
               biases in the graph on every run;
  openvino     OpenVINO on the static ONNX file.
Exports are checked against PyTorch (within 1e-4 of the output magnitude)
before timing. All runtimes use
--threads threads; ONNX Runtime's worker threads do not spin between runs,
so that they do not slow the runtime timed next, and OpenVINO (whose
threads do) is timed in a block of its own after the others. "best" is the
fused time over the fastest runtime's.

MACs come from mmengine.analysis.get_model_complexity_info, which counts one
multiply-accumulate as one "flop" and skips ops it has no formula for
(normalisations, the bicubic resize of attention biases at non-reference
sizes). Latency is the median wall time of --repeats runs on one image
after --warmup untimed runs; the other runtimes alternate run by run, so
that a changing machine load affects them alike. Rows are printed as they
finish.

examples:
  python tools/analysis_tools/benchmark.py --threads 2
  python tools/analysis_tools/benchmark.py --variants s0 s2 --models dense \
      --runtimes fused ort-static --threads 2
"""

RUNTIMES = ('eager', 'fused', 'ort-static', 'ort-dynamic', 'openvino')
MODELS = ('classifier', 'dense')


def parse_args(argv=None) -> argparse.Namespace:
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
    if 'fused' not in args.runtimes:
        # The speed-up column and every exported file are relative to it.
        args.runtimes = ['fused'] + list(args.runtimes)
    return args


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


def exported_runs(fused: nn.Module, x: torch.Tensor, runtimes: Sequence[str],
                  threads: int, work_dir: str) -> Dict[str, Callable]:
    """Export the fused model as ``runtimes`` need; one run closure each.

    Every file is checked against PyTorch at the timed size first.
    """
    from mmeformer.deployment import (BackboneExport, ClassifierExport,
                                      export_onnx, onnxruntime_session,
                                      verify_onnx)
    wrapper = (ClassifierExport(fused)
               if hasattr(fused, 'head') else BackboneExport(fused)).eval()
    size = tuple(x.shape[2:])
    files = {}
    for dynamic in (False, True):
        name = 'ort-dynamic' if dynamic else 'ort-static'
        if name in runtimes or (not dynamic and 'openvino' in runtimes):
            path = osp.join(work_dir, f'{name}.onnx')
            export_onnx(wrapper, size, path, dynamic=dynamic)
            verify_onnx(wrapper, path, [size])
            files[name] = path
    runs = {}
    inputs = x.numpy()
    for name in ('ort-static', 'ort-dynamic'):
        if name in runtimes:
            session = onnxruntime_session(files[name], threads)
            runs[name] = (lambda s=session: s.run(None, {'input': inputs}))
    if 'openvino' in runtimes:
        import openvino as ov
        compiled = ov.Core().compile_model(files['ort-static'], 'CPU', {
            'INFERENCE_NUM_THREADS': threads,
            'PERFORMANCE_HINT': 'LATENCY'
        })
        request = compiled.create_infer_request()
        runs['openvino'] = lambda: request.infer({0: inputs})
    return runs


def available_runtimes(runtimes: Sequence[str]) -> List[str]:
    """The runtimes whose packages are installed; notes the others."""
    packages = {
        'ort-static': 'onnxruntime',
        'ort-dynamic': 'onnxruntime',
        'openvino': 'openvino'
    }
    available = []
    for name in runtimes:
        try:
            if name in packages:
                __import__(packages[name])
            available.append(name)
        except ImportError:
            print(f'skipping {name}: {packages[name]} is not installed '
                  '(pip install -r requirements/deploy.txt)')
    return available


def fused_copy(model: nn.Module, size: Sequence[int]) -> nn.Module:
    """A deploy-mode copy, checked against the eager model."""
    fused = copy.deepcopy(model)
    backbone = getattr(fused, 'backbone', fused)
    backbone.switch_to_deploy()
    x = torch.randn(1, 3, *size)
    with torch.inference_mode():
        ref, out = model(x), fused(x)
    ref = ref if isinstance(ref, torch.Tensor) else ref[-1]
    out = out if isinstance(out, torch.Tensor) else out[-1]
    diff = (ref - out).abs().max().item()
    if diff > 1e-3:
        raise RuntimeError(f'fused model deviates by {diff:.2e}')
    return fused


def time_model(model: nn.Module, size: Sequence[int], runtimes: Sequence[str],
               args: argparse.Namespace, work_dir: str) -> Dict[str, float]:
    """Median latency of ``model`` at ``size`` in each runtime."""
    x = torch.randn(1, 3, *size)
    fused = fused_copy(model, size)
    runs = {'eager': lambda: model(x), 'fused': lambda: fused(x)}
    runs.update(
        exported_runs(fused, x, runtimes, torch.get_num_threads(), work_dir))
    # OpenVINO's worker threads keep the cores busy after a run, which
    # would slow whatever is timed next: it gets a block of its own.
    blocks = [[name for name in runtimes if name != 'openvino'],
              [name for name in runtimes if name == 'openvino']]
    times = {}
    for block in filter(None, blocks):
        times.update(
            zip(
                block,
                latencies_ms([runs[name] for name in block], args.repeats,
                             args.warmup)))
    return {name: times[name] for name in runtimes}


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    runtimes = available_runtimes(args.runtimes)
    sizes = dict(classifier=tuple(args.cls_size), dense=tuple(args.dense_size))
    tags = {name: 'x'.join(map(str, size)) for name, size in sizes.items()}
    header = ['variant', 'params (M)']
    if 'classifier' in args.models:
        header += [f"MACs {tags['classifier']} (G)", 'published (G)', 'diff']
    if 'dense' in args.models:
        header += [f"MACs {tags['dense']} (G)"]
    for name in args.models:
        header += [f'{tags[name]} {runtime} (ms)' for runtime in runtimes]
        header += [f'{tags[name]} best']
    machine = (f'{platform.processor() or platform.machine()}, '
               f'{torch.get_num_threads()} threads, torch '
               f'{torch.__version__}, median of {args.repeats} timed runs '
               f'after {args.warmup} warm-up runs, batch 1')
    out = open(args.out, 'w') if args.out else None
    emit('| ' + ' | '.join(header) + ' |', out)
    emit('|' + '|'.join('---' for _ in header) + '|', out)
    for name in args.variants:
        backbone_type, arch, published = VARIANTS[name]
        models = dict(
            classifier=build_classifier(backbone_type, arch),
            dense=build_dense_backbone(backbone_type, arch))
        params = sum(p.numel() for p in models['classifier'].parameters())
        label = f"{'V1' if backbone_type == 'EfficientFormer' else 'V2'}-" \
                f'{arch.upper()}'
        row = [label, f'{params / 1e6:.2f}']
        if 'classifier' in args.models:
            macs = count_macs(models['classifier'], sizes['classifier']) / 1e9
            row += [
                f'{macs:.2f}', f'{published}',
                f'{100 * (macs / published - 1):+.1f}%'
            ]
        if 'dense' in args.models:
            macs = count_macs(models['dense'], sizes['dense']) / 1e9
            row += [f'{macs:.1f}']
        for model_name in args.models:
            with tempfile.TemporaryDirectory() as work_dir:
                times = time_model(models[model_name], sizes[model_name],
                                   runtimes, args, work_dir)
            digits = 1 if model_name == 'classifier' else 0
            row += [f'{times[runtime]:.{digits}f}' for runtime in runtimes]
            best = min(times, key=times.get)
            row += [f"{times['fused'] / times[best]:.2f}x {best}"]
            gc.collect()
        del models
        gc.collect()
        emit('| ' + ' | '.join(row) + ' |', out)
    emit(f'\n{machine}', out)
    if out is not None:
        out.close()


def emit(line: str, out: Optional[TextIO]) -> None:
    """Print a line and, when writing to a file, append it there too."""
    print(line, flush=True)
    if out is not None:
        out.write(line + '\n')
        out.flush()


if __name__ == '__main__':
    main()
