"""Latency on your own device: build a per-block latency table of the
EfficientFormerV2 search space and of the published V1 networks, predict
networks from it, check the predictions against measured networks (with a
picture), and profile a whole model per operator type."""
import argparse
import json
import logging
import os.path as osp
import random
import sys
import time
from typing import Optional, Tuple

EPILOG = """\
commands:
  build     measure every block of the search space (and, at 224 or with
            --v1, of the published V1 networks) in one runtime, at one input
            size, into a JSON table (resumable: rerun to continue)
  predict   predicted latency of published variants or arch dicts
  accuracy  measure the published networks (V2, and V1 if the table holds
            their blocks) and random archs whole, compare with the table's
            predictions (median and worst relative error, Kendall tau),
            optionally fit a correction into the table, and plot latency
            against parameters and MACs
  profile   time per operator type of a whole model in each runtime

examples:
  python tools/analysis_tools/latency_table.py build --runtime onnxruntime \\
      --threads 2 --out work_dirs/latency/onnxruntime_fp32_224.json
  python tools/analysis_tools/latency_table.py predict \\
      work_dirs/latency/onnxruntime_fp32_224.json s0 l l1
  python tools/analysis_tools/latency_table.py accuracy \\
      work_dirs/latency/onnxruntime_fp32_224.json --random 20 --fit 10 \\
      --plot latency_onnxruntime.png
  python tools/analysis_tools/latency_table.py profile --arch s2 \\
      --runtimes torch onnxruntime openvino --threads 2
"""

#: Published variants: name -> (backbone type, arch).
VARIANTS = {
    'l1': ('EfficientFormer', 'l1'),
    'l3': ('EfficientFormer', 'l3'),
    'l7': ('EfficientFormer', 'l7'),
    's0': ('EfficientFormerV2', 's0'),
    's1': ('EfficientFormerV2', 's1'),
    's2': ('EfficientFormerV2', 's2'),
    'l': ('EfficientFormerV2', 'l'),
}
V2_NAMES = ('s0', 's1', 's2', 'l')
V1_NAMES = tuple(n for n, (backbone, _) in VARIANTS.items()
                 if backbone == 'EfficientFormer')


def label(name: str) -> str:
    """``'V2-S0'`` for ``'s0'``."""
    family = 'V1' if VARIANTS[name][0] == 'EfficientFormer' else 'V2'
    return f'{family}-{name.upper()}'


def parse_args(argv=None) -> argparse.Namespace:
    from mmeformer.latency import RUNTIMES
    parser = argparse.ArgumentParser(
        description='Per-block latency tables, latency prediction and '
        'per-operator profiles of EfficientFormer on this machine',
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)

    def common(sub, runtime=True):
        if runtime:
            sub.add_argument(
                '--runtime',
                choices=RUNTIMES,
                default='torch',
                help='torch (eager, BatchNorm folded), onnxruntime or '
                'openvino (default: torch)')
        sub.add_argument(
            '--precision',
            default='fp32',
            help='fp32; OpenVINO also fp16 or bf16 where the CPU has them '
            '(default: fp32)')
        sub.add_argument(
            '--input-size',
            default='224',
            help='network input size, 224 or HxW such as 800x1216; the '
            'classifier head is included at 224 (default: 224)')
        sub.add_argument(
            '--threads',
            type=int,
            default=None,
            help='CPU threads of every runtime (default: torch\'s number)')

    build = commands.add_parser(
        'build', help='measure a latency table (resumable)')
    common(build)
    build.add_argument(
        '--out',
        help='the table (default: work_dirs/latency/'
        '<runtime>_<precision>_<size>.json)')
    build.add_argument(
        '--space',
        help='a JSON search space (EfficientFormerV2Space.to_dict); '
        'default: EfficientFormerV2Space.default()')
    build.add_argument(
        '--repeats',
        type=int,
        default=30,
        help='timed runs per block, the fastest kept (default: 30)')
    build.add_argument(
        '--warmup',
        type=int,
        default=5,
        help='untimed runs per block (default: 5)')
    build.add_argument(
        '--no-resume',
        action='store_true',
        help='start afresh even if --out holds a partial table')
    build.add_argument(
        '--v1',
        action=argparse.BooleanOptionalAction,
        default=None,
        help='also measure the blocks of the published V1 networks L1, L3 '
        'and L7, to predict them (default: at 224 only; --v1 on an '
        'existing table adds them)')
    build.add_argument(
        '--export-dir',
        help='keep the exported blocks here, to share them between '
        'onnxruntime and openvino builds (default: a temporary folder)')

    predict = commands.add_parser(
        'predict', help='predicted latency of archs from a table')
    predict.add_argument('table', help='the latency table')
    predict.add_argument(
        'archs',
        nargs='+',
        help='published names (V2 s0 s1 s2 l; V1 l1 l3 l7 if the table '
        'holds their blocks) or V2 arch dicts as JSON')
    predict.add_argument(
        '--plain',
        action='store_true',
        help='the plain sum, ignoring the table\'s correction')

    accuracy = commands.add_parser(
        'accuracy', help='predicted against measured whole networks')
    accuracy.add_argument(
        'table', help='the latency table, made on this machine')
    accuracy.add_argument(
        '--random',
        type=int,
        default=20,
        help='random archs of the table\'s space to measure (default: 20)')
    accuracy.add_argument(
        '--seed', type=int, default=0, help='seed of the random archs')
    accuracy.add_argument(
        '--fit',
        type=int,
        default=0,
        metavar='N',
        help='also measure N other random archs (seed + 1), fit a '
        'correction (overhead + a scale per stage) on them and store it '
        'in the table; the report then shows both predictions '
        '(default: 0, no fit)')
    accuracy.add_argument(
        '--repeats',
        type=int,
        default=None,
        help='timed runs per network (default: the table\'s)')
    accuracy.add_argument(
        '--plot',
        help='write measured latency against parameters and MACs as a PNG')
    accuracy.add_argument('--out', help='also write the report here (.md)')

    profile = commands.add_parser(
        'profile', help='time per operator type of a whole model')
    profile.add_argument(
        '--arch',
        default='s0',
        choices=list(VARIANTS),
        help='published variant (default: s0)')
    profile.add_argument(
        '--runtimes',
        nargs='+',
        choices=RUNTIMES,
        default=list(RUNTIMES),
        help='runtimes (default: all three)')
    common(profile, runtime=False)
    profile.add_argument(
        '--runs',
        type=int,
        default=10,
        help='profiled runs after warm-up (default: 10)')
    profile.add_argument(
        '--top',
        type=int,
        default=12,
        help='op types listed per runtime, the rest as "other" '
        '(default: 12)')
    return parser.parse_args(argv)


def load_space(path: Optional[str]):
    from mmeformer.models.backbones import EfficientFormerV2Space
    if path is None:
        return EfficientFormerV2Space.default()
    with open(path) as f:
        return EfficientFormerV2Space.from_dict(json.load(f))


def cmd_build(args) -> None:
    from mmeformer.latency import build_table
    from mmeformer.utils import parse_size
    space = load_space(args.space)
    size = parse_size(args.input_size, '--input-size')
    out = args.out or osp.join(
        'work_dirs', 'latency',
        f'{args.runtime}_{args.precision}_{size[0]}x{size[1]}.json')
    if args.out is None:
        import os
        os.makedirs(osp.dirname(out), exist_ok=True)
    start = time.perf_counter()
    table = build_table(
        space,
        args.runtime,
        args.precision,
        size,
        out,
        threads=args.threads,
        repeats=args.repeats,
        warmup=args.warmup,
        resume=not args.no_resume,
        with_v1=args.v1,
        work_dir=args.export_dir,
        log=lambda line: print(line, flush=True))
    print(f'{out}: {len(table.entries)} blocks, {table.describe()}; '
          f'this run {time.perf_counter() - start:.0f} s, the whole build '
          f"{table.meta.get('build_seconds', 0):.0f} s")


def parse_arch(text: str):
    if text.lower() in VARIANTS:
        return text.lower()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f'{text!r} is neither a published name '
                         f'({" ".join(VARIANTS)}) nor a V2 arch dict in '
                         'JSON') from None


def cmd_predict(args) -> None:
    from mmeformer.latency import LatencyTable, device_name, predict_latency
    table = LatencyTable.load(args.table)
    print(f'# {table.describe()}')
    if table.meta['device'] != device_name():
        print(f'# made on another machine than this one ({device_name()}): '
              "the predictions are that machine's")
    for text in args.archs:
        ms = predict_latency(parse_arch(text), table, not args.plain)
        print(f'{text}: {ms:.3f} ms')


def count_macs(model, size) -> float:
    import torch
    from mmengine.analysis import get_model_complexity_info
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    # The counter warns about every op it has no formula for (norms).
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


def network_size(arch, table) -> Tuple[float, float]:
    """Parameters (M) and MACs (G) of the network a table predicts."""
    from mmeformer.latency import build_network
    size = table.meta['input_size']
    model = build_network(arch, size, table.with_head)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return params, count_macs(model, size) / 1e9


def plot(path, table, points) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for axis, index, unit in ((axes[0], 1, 'parameters (M)'), (axes[1], 2,
                                                               'MACs (G)')):
        rand = [p for p in points if p[0].startswith('random')]
        axis.scatter([p[index] for p in rand], [p[4] for p in rand],
                     s=12,
                     c='0.6',
                     label='random archs of the space')
        for color, family in (('tab:red', 'V2'), ('tab:blue', 'V1')):
            rows = [p for p in points if p[0].startswith(f'{family}-')]
            if not rows:
                continue
            axis.plot([r[index] for r in rows], [r[-1] for r in rows],
                      'o-',
                      color=color,
                      label=f'published {family}')
            for row in rows:
                axis.annotate(
                    row[0].split('-')[1], (row[index], row[-1]),
                    textcoords='offset points',
                    xytext=(4, -10),
                    fontsize=8)
        axis.set_xlabel(unit)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel('measured latency (ms)')
    axes[0].legend(fontsize=8)
    height, width = table.meta['input_size']
    fig.suptitle(
        f"{table.meta['runtime']} {table.meta['precision']}, {height}x"
        f"{width}, batch 1, {table.meta['threads']} threads, "
        f"{table.meta['device']}",
        fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def cmd_accuracy(args) -> None:
    from mmeformer.latency import (LatencyTable, check_runtime, device_name,
                                   fit_correction, measure_networks,
                                   predict_latency, prediction_errors)

    # Networks are measured here, so the table must be of this machine.
    table = LatencyTable.load(args.table, expect=dict(device=device_name()))
    check_runtime(table.meta['runtime'], table.meta['precision'])
    space = table.space
    lines = [f'# {table.describe()}']
    names = [n for n in V2_NAMES if space.contains(space.published(n))]
    archs = [space.published(n) for n in names]
    if table.with_v1:
        names += V1_NAMES
        archs += list(V1_NAMES)
    else:
        lines.append('V1-L1, V1-L3 and V1-L7 left out: the table holds no '
                     'V1 blocks; rerun its build command with --v1 to add '
                     'them (it resumes)')
    rng = random.Random(args.seed)
    archs += [space.sample(rng) for _ in range(args.random)]
    labels = [label(n) for n in names]
    labels += [f'random {i}' for i in range(args.random)]

    def log(line):
        print(line, file=sys.stderr, flush=True)

    measured = measure_networks(archs, table, args.repeats, log=log)
    if args.fit:
        fit_rng = random.Random(args.seed + 1)
        fit_archs = [space.sample(fit_rng) for _ in range(args.fit)]
        fit_measured = measure_networks(
            fit_archs, table, args.repeats, log=log)
        try:
            table.correction = fit_correction(table, fit_archs, fit_measured)
        except ValueError as error:
            lines.append(f'no correction stored: {error}')
        else:
            table.correction.update(seed=args.seed + 1)
            table.save(args.table)
            lines.append(f'correction fitted on {args.fit} other random '
                         f'archs (seed {args.seed + 1}): {table.correction}')
    plain = [predict_latency(a, table, corrected=False) for a in archs]
    corrected = [predict_latency(a, table) for a in archs]
    header = '| network | params (M) | MACs (G) | predicted (ms) |'
    if table.correction:
        header += ' corrected (ms) |'
    lines += [
        header + ' measured (ms) | error |',
        '|' + '---|' * (header.count('|') + 1)
    ]
    points = []
    for name, arch, p, c, m in zip(labels, archs, plain, corrected, measured):
        params, macs = network_size(arch, table)
        points.append((name, params, macs, p, m))
        best = c if table.correction else p
        row = f'| {name} | {params:.2f} | {macs:.3f} | {p:.2f} |'
        if table.correction:
            row += f' {c:.2f} |'
        lines.append(row + f' {m:.2f} | {100 * (best - m) / m:+.1f}% |')
    for what, predicted in (('plain sum', plain), ('corrected', corrected)):
        if what == 'corrected' and not table.correction:
            continue
        stats = prediction_errors(predicted, measured)
        lines.append(
            f"{what}: median error {100 * stats['median_error']:.1f}%, "
            f"worst {100 * stats['worst_error']:.1f}%, mean signed "
            f"{100 * stats['mean_signed_error']:+.1f}%, Kendall tau "
            f"{stats['kendall_tau']:.3f} over {len(archs)} networks")
    if args.plot:
        plot(args.plot, table, points)
        lines.append(f'plot: {args.plot}')
    text = '\n'.join(lines)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')


def cmd_profile(args) -> None:
    from mmeformer.latency import build_classifier
    from mmeformer.latency.profile import profile_model, profile_table
    from mmeformer.utils import parse_size
    size = parse_size(args.input_size, '--input-size')
    model = build_classifier(*VARIANTS[args.arch], size)
    profiles = {}
    for runtime in args.runtimes:
        profiles[runtime] = profile_model(
            model, size, runtime,
            args.precision if runtime != 'torch' else 'fp32', args.threads,
            args.runs)
    print(f'# {label(args.arch)} classifier, {size[0]}x{size[1]}, batch 1, '
          f'{args.threads or "default"} threads, {args.runs} runs; ms per '
          'run (profiler times, not wall times)')
    print('\n'.join(profile_table(profiles, args.top)))


def main(argv=None) -> None:
    args = parse_args(argv)
    from mmeformer.models.backbones import ArchOutsideSpaceError
    from mmeformer.runtime import SetupError
    from mmeformer.utils import quiet_host_warnings
    quiet_host_warnings()
    command = dict(
        build=cmd_build,
        predict=cmd_predict,
        accuracy=cmd_accuracy,
        profile=cmd_profile)[args.command]
    try:
        command(args)
    except (ValueError, SetupError, ArchOutsideSpaceError, OSError) as e:
        sys.exit(f'latency_table.py {args.command}: error: {e}')


if __name__ == '__main__':
    main()
