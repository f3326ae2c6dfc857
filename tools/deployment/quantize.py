"""Quantize an exported fp32 model to INT8 with NNCF (post-training).

Calibrated on the config's own data; with --max-drop, NNCF's accuracy
control keeps layers in float until the config's test metric drops by at
most that many points. Score the result with test_backend.py.
"""
import argparse
import time

import numpy as np

import mmeformer  # noqa: F401  (registers the `mmeformer::` config prefix)
from mmeformer.deployment.quantize import quantize_file
from mmeformer.deployment.runtimes import open_session
from mmeformer.deployment.scoring import read_signature
from mmeformer.runtime import (SetupError, add_config_arguments,
                               exit_on_setup_error, parse_tool_args)
from mmeformer.utils import quiet_host_warnings

EPILOG = """\
The fp32 file is one of pytorch2onnx.py (classifier, backbone or segmentor;
for a detector, its backbone). NNCF quantizes it with the transformer model
type, calibrated on --num-samples images of the training split read through
the test pipeline and the model's data preprocessor. The output is an
OpenVINO IR (.xml + .bin) or an ONNX QDQ file (.onnx), written only once
complete.

--ignored-types / --ignored-patterns / --ignored-names keep layers in float
(OpenVINO op types such as Softmax, Gelu, MatMul, Add; regular expressions
of node names). --max-drop runs nncf.quantize_with_accuracy_control with the
config's test evaluator: points are mAP x 100 (COCO bbox), top-1 and mIoU in
%. --compare-speed times the fp32 file (ONNX Runtime and OpenVINO f32) and
the int8 file (OpenVINO) on one input, interleaved; --profile shows where
OpenVINO spends the time of each.

examples:
  python tools/deployment/quantize.py \\
      configs/demo/fpn_eformerv2_s0_shapes.py fpn_segmentor_256x256.onnx \\
      fpn_int8.xml --num-samples 100
  python tools/deployment/quantize.py \\
      configs/demo/maskrcnn_eformerv2_s0_shapes.py backbone_256x256.onnx \\
      backbone_int8.xml --checkpoint iter_200.pth --max-drop 1
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='INT8 post-training quantization of an exported model '
        'with NNCF',
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(
        parser,
        checkpoint='option',
        checkpoint_help='checkpoint of the whole model (the accuracy '
        'control of a backbone file runs the heads with it)',
        cfg_options_example='train_dataloader.dataset.data_root=data/shapes/')
    parser.add_argument('model', help='the fp32 .onnx (or .xml) file')
    parser.add_argument(
        'output', help='the INT8 file: .xml (OpenVINO IR) or .onnx (QDQ)')
    parser.add_argument(
        '--num-samples',
        type=int,
        default=300,
        help='calibration images (default: 300)')
    parser.add_argument(
        '--calib-split',
        choices=('train', 'val', 'test'),
        default='train',
        help='split of the calibration images (default: train)')
    parser.add_argument(
        '--ignored-types', nargs='+', default=[], metavar='TYPE')
    parser.add_argument(
        '--ignored-patterns', nargs='+', default=[], metavar='REGEX')
    parser.add_argument(
        '--ignored-names', nargs='+', default=[], metavar='NAME')
    parser.add_argument(
        '--preset',
        choices=('performance', 'mixed'),
        help='NNCF preset (default: NNCF\'s for transformers, mixed)')
    parser.add_argument(
        '--max-drop',
        type=float,
        help='quantize with accuracy control: most points lost')
    parser.add_argument(
        '--metric',
        help='the metric the accuracy control keeps (default: top-1, COCO '
        'bbox mAP or mIoU)')
    parser.add_argument(
        '--compare-speed',
        type=int,
        metavar='RUNS',
        help='time fp32 and int8 afterwards, RUNS runs each in interleaved '
        'blocks of 5')
    parser.add_argument(
        '--profile',
        type=int,
        metavar='RUNS',
        help='print OpenVINO\'s time per layer type (and kernel), fp32 and '
        'int8, over RUNS runs')
    parser.add_argument(
        '--threads', type=int, help='threads of the speed comparison')
    return parser, parse_tool_args(parser, argv)


def compare_speed(fp32_file: str, int8_file: str, runs: int, threads=None):
    """Median latency (ms) of the fp32 file in ONNX Runtime and OpenVINO f32
    and of the int8 file in OpenVINO, timed in interleaved rounds."""
    inputs, _ = read_signature(fp32_file)
    shape = next(iter(inputs.values()))
    if None in shape:
        raise SetupError('--compare-speed times files of one input size; '
                         f'{fp32_file} is dynamic')
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    sessions = {}
    if fp32_file.endswith('.onnx'):
        sessions['onnxruntime fp32'] = open_session(fp32_file, 'onnxruntime',
                                                    'fp32', threads)
    sessions['openvino fp32'] = open_session(fp32_file, 'openvino', 'fp32',
                                             threads)
    sessions['openvino int8'] = open_session(int8_file, 'openvino', 'int8',
                                             threads)
    times = {name: [] for name in sessions}
    for name, session in sessions.items():
        for _ in range(3):
            session(x)
    # Blocks of runs per session: OpenVINO's worker threads spin for a
    # while after a run, which slows whatever runs right after it.
    for _ in range(max(1, runs // 5)):
        for name, session in sessions.items():
            for _ in range(5):
                start = time.perf_counter()
                session(x)
                times[name].append(time.perf_counter() - start)
    return {name: 1e3 * float(np.median(t)) for name, t in times.items()}


def profile(fp32_file: str, int8_file: str, runs: int, threads=None):
    """Share of OpenVINO's time per layer type, fp32 and int8 (f32 float
    layers in both), from its per-layer performance counters.

    Returns:
        dict: ``{'fp32': {layer type: ms per run}, 'int8': ...}``.
    """
    import openvino as ov
    inputs, _ = read_signature(fp32_file)
    x = np.random.default_rng(0).standard_normal(next(iter(
        inputs.values()))).astype(np.float32)
    config = {'INFERENCE_PRECISION_HINT': 'f32', 'PERF_COUNT': True}
    if threads is not None:
        config['INFERENCE_NUM_THREADS'] = threads
    result = {}
    for name, path in (('fp32', fp32_file), ('int8', int8_file)):
        request = ov.Core().compile_model(path, 'CPU',
                                          config).create_infer_request()
        request.infer({0: x})
        totals = {}
        for _ in range(runs):
            request.infer({0: x})
            for info in request.profiling_info:
                key = f'{info.node_type} ({info.exec_type})'
                totals[key] = totals.get(key, 0.) + \
                    info.real_time.total_seconds() * 1e3 / runs
        result[name] = totals
    return result


def main(argv=None):
    quiet_host_warnings()
    parser, args = parse_args(argv)
    with exit_on_setup_error(parser):
        result = quantize_file(
            args.config,
            args.model,
            args.output,
            checkpoint=args.checkpoint,
            cfg_options=args.cfg_options,
            calib_split=args.calib_split,
            num_samples=args.num_samples,
            ignored_names=args.ignored_names,
            ignored_patterns=args.ignored_patterns,
            ignored_types=args.ignored_types,
            max_drop=args.max_drop,
            metric=args.metric,
            preset=args.preset)
        print(f"wrote {result['output']} ({result['kind']}, int8, "
              f"calibrated on {result['num_samples']} images)")
        if args.compare_speed:
            times = compare_speed(args.model, result['output'],
                                  args.compare_speed, args.threads)
            best = min(t for name, t in times.items() if 'fp32' in name)
            for name, ms in times.items():
                print(f'  {name:18s} {ms:8.2f} ms')
            print(f"  int8 speed-up over the best fp32: "
                  f"{best / times['openvino int8']:.2f}x")
        if args.profile:
            for name, totals in profile(args.model, result['output'],
                                        args.profile, args.threads).items():
                total = sum(totals.values())
                print(f'OpenVINO {name}: {total:.2f} ms of layer time')
                for key, ms in sorted(totals.items(), key=lambda i: -i[1]):
                    if ms >= 0.01 * total:
                        print(f'  {100 * ms / total:5.1f} %  {key}')


if __name__ == '__main__':
    main()
