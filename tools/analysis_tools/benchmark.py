"""Benchmark the EfficientFormer variants: parameters, MACs, CPU latency."""
import argparse
import copy
import gc
import logging
import platform
import statistics
import time
from typing import Dict, List, Optional, Sequence, TextIO

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
    attention biases for an 800 input, V1 with its per-output GroupNorm),
    counted and timed at --dense-size.
"Fused" is the same model after switch_to_deploy() (BatchNorm folded into
the convs). MACs come from mmengine.analysis.get_model_complexity_info,
which counts one multiply-accumulate as one "flop" and skips ops it has no
formula for (normalisations, the bicubic resize of attention biases at
non-reference sizes). Latency is the median
wall time of --repeats forward passes of one image under torch.inference_mode
after --warmup untimed passes (eval mode, so the resized attention biases
are cached after the first pass); eager and fused runs alternate, so that a
changing machine load affects both alike. Rows are printed as they finish.

example:
  python tools/analysis_tools/benchmark.py --variants l1 s0 --threads 2
"""


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
        help='torch CPU threads (default: torch\'s own choice)')
    parser.add_argument(
        '--out', help='also write the markdown table to this file')
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error('--repeats must be >= 1 and --warmup >= 0')
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
                type=f'mmeformer.{backbone_type}', arch=arch,
                final_norm=True),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(
                type='mmeformer.EfficientFormerClsHead',
                num_classes=1000,
                in_channels=channels))).eval()


def build_dense_backbone(backbone_type: str, arch: str) -> nn.Module:
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    out_norm_cfg = None
    if backbone_type == 'EfficientFormer':
        out_norm_cfg = dict(type='GN', num_groups=1)
    return MODELS.build(
        dict(
            type=f'mmeformer.{backbone_type}',
            arch=arch,
            out_indices=(0, 1, 2, 3),
            attn_ref_size=800,
            out_norm_cfg=out_norm_cfg)).eval()


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


def latencies_ms(models: Sequence[nn.Module], size: Sequence[int],
                 repeats: int, warmup: int) -> List[float]:
    """Median forward time of each model, runs interleaved across models so
    that a changing machine load affects them alike."""
    x = torch.randn(1, 3, *size)
    times: List[List[float]] = [[] for _ in models]
    with torch.inference_mode():
        for _ in range(warmup):
            for model in models:
                model(x)
        for _ in range(repeats):
            for model, model_times in zip(models, times):
                start = time.perf_counter()
                model(x)
                model_times.append((time.perf_counter() - start) * 1e3)
    return [statistics.median(t) for t in times]


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


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cls_size, dense_size = tuple(args.cls_size), tuple(args.dense_size)
    cls_tag = 'x'.join(map(str, cls_size))
    dense_tag = 'x'.join(map(str, dense_size))
    header = [
        'variant', 'params (M)', f'MACs {cls_tag} (G)', 'published (G)',
        'diff', f'MACs {dense_tag} (G)', f'{cls_tag} eager (ms)',
        f'{cls_tag} fused (ms)', f'{dense_tag} eager (ms)',
        f'{dense_tag} fused (ms)'
    ]
    machine = (f'{platform.processor() or platform.machine()}, '
               f'{torch.get_num_threads()} torch threads, torch '
               f'{torch.__version__}, median of {args.repeats} timed runs '
               f'after {args.warmup} warm-up runs, batch 1')
    lines = [
        '| ' + ' | '.join(header) + ' |',
        '|' + '|'.join('---' for _ in header) + '|',
    ]
    out = open(args.out, 'w') if args.out else None
    for line in lines:
        emit(line, out)
    for name in args.variants:
        backbone_type, arch, published = VARIANTS[name]
        classifier = build_classifier(backbone_type, arch)
        dense = build_dense_backbone(backbone_type, arch)
        params = sum(p.numel() for p in classifier.parameters())
        cls_macs = count_macs(classifier, cls_size) / 1e9
        dense_macs = count_macs(dense, dense_size) / 1e9
        timings = []
        for model, size in ((classifier, cls_size), (dense, dense_size)):
            timings += latencies_ms([model, fused_copy(model, size)], size,
                                    args.repeats, args.warmup)
        del classifier, dense
        gc.collect()
        label = f"{'V1' if backbone_type == 'EfficientFormer' else 'V2'}-" \
                f'{arch.upper()}'
        row = [
            label, f'{params / 1e6:.2f}', f'{cls_macs:.2f}', f'{published}',
            f'{100 * (cls_macs / published - 1):+.1f}%', f'{dense_macs:.1f}',
            f'{timings[0]:.1f}', f'{timings[1]:.1f}', f'{timings[2]:.0f}',
            f'{timings[3]:.0f}'
        ]
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
