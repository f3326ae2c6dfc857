"""Export a classifier, backbone, segmentor or detector to ONNX or Core ML.

The OpenMMLab ``pytorch2onnx.py`` of MMPretrain / MMSegmentation 0.x, for
the mmeformer configs. Detectors go through MMDeploy.
"""
import argparse
import os.path as osp
import sys

import mmeformer  # noqa: F401  (registers the `mmeformer::` config prefix)
from mmeformer.deployment import (COREML_PRECISIONS, EXPORT_KINDS, PRECISIONS,
                                  RUNTIMES, available_precisions,
                                  build_export_model, check_opset,
                                  check_output_path, check_precision,
                                  default_kind, export_coreml, export_detector,
                                  export_onnx, verify_detector, verify_onnx)
from mmeformer.runtime import (SetupError, add_config_arguments,
                               build_meta_model, check_checkpoint,
                               check_input_size, exit_on_setup_error, get_host,
                               load_config, parse_tool_args)
from mmeformer.utils import quiet_host_warnings

KINDS = tuple(EXPORT_KINDS) + ('detector', )
DEFAULT_SHAPES = dict(
    classifier=(224, 224),
    backbone=(512, 512),
    segmentor=(512, 512),
    detector=(800, 1216))
#: Sizes a dynamic file is checked at with --verify.
DYNAMIC_VERIFY_SHAPES = ((224, 224), (512, 512), (513, 671), (800, 1216))
DEPLOY_CONFIGS = osp.join(
    osp.dirname(osp.abspath(__file__)), '..', '..', 'configs', 'deployment')

EPILOG = """\
The input is the normalised image batch (the data preprocessor's output),
named "input". Outputs: "logits" (classifier: the mean of both heads),
"feat0".. (backbone), "seg_logits" at the input size (segmentor), and
MMDeploy's "dets", "labels", "masks" (detector). The model is fused
(switch_to_deploy) unless --no-fuse.

--shape exports one size: the file holds the attention-bias tables and
computes the biases of that size from constants, which the runtime folds
when it loads the file; --dynamic-export takes any batch, height and width
(32 px and up) and resizes the biases in the graph, as PyTorch does up to
float rounding. --verify runs the file in each runtime of --verify-runtimes
(default: ONNX Runtime and OpenVINO, those installed that run --precision
here) at --precision (default fp32; OpenVINO also bf16 and fp16 where the
CPU has them) and compares it with fp32 PyTorch: at the exported size, or
for a dynamic file at 224x224, 512x512, 513x671 and 800x1216 (or
--verify-shapes) and at batch 2 at the first of them. Bounds on the max
difference relative to the output magnitude: fp32 1e-4, fp16 1e-2, bf16
3e-2. A detector is verified in ONNX Runtime fp32, detection by detection.
For Core ML, --precision is the compute precision written into the package
(fp32, or fp16, Core ML's own default).

examples:
  python tools/deployment/pytorch2onnx.py \\
      configs/classification/eformerv2_s0_in1k.py \\
      --checkpoint eformerv2_s0_in1k.pth --shape 224 224 --verify
  python tools/deployment/pytorch2onnx.py \\
      configs/detection/maskrcnn_eformerv2_s0_coco.py --kind backbone \\
      --checkpoint maskrcnn_eformerv2_s0_coco.pth --dynamic-export --verify
  python tools/deployment/pytorch2onnx.py \\
      configs/classification/eformerv2_s0_in1k.py --format coreml
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export an mmeformer model to ONNX or Core ML',
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(
        parser,
        checkpoint='option',
        checkpoint_help='checkpoint of the whole model',
        cfg_options_example='model.backbone.attn_ref_size=800')
    parser.add_argument(
        '--kind',
        choices=KINDS,
        help='what to export (default: the config\'s whole model)')
    parser.add_argument(
        '--format',
        choices=('onnx', 'coreml'),
        default='onnx',
        help='onnx, or coreml (an .mlpackage; classifier and backbone, '
        'fixed size)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        metavar='SIZE',
        help='input size H [W] (default: 224 for the classifier, 512 for the '
        'backbone and the segmentor, 800 1216 for the detector)')
    parser.add_argument(
        '--dynamic-export',
        action='store_true',
        help='dynamic batch, height and width')
    parser.add_argument(
        '--opset-version',
        type=int,
        default=None,
        help='ONNX opset (default: 17; detectors: the deploy config\'s)')
    parser.add_argument(
        '--output-file',
        help='output path (default: <config>_<kind>[_dynamic|_HxW].onnx '
        'or .mlpackage in the current folder)')
    parser.add_argument(
        '--verify',
        action='store_true',
        help='run the file in each runtime and compare it with PyTorch')
    parser.add_argument(
        '--precision',
        choices=PRECISIONS,
        default='fp32',
        help='precision --verify runs each runtime at (the ONNX file stays '
        'float32); Core ML: the compute precision of the package, fp32 or '
        'fp16 (default: fp32)')
    parser.add_argument(
        '--verify-runtimes',
        nargs='+',
        choices=RUNTIMES,
        metavar='RUNTIME',
        help='runtimes --verify runs: onnxruntime, openvino (default: those '
        'installed that run --precision here)')
    parser.add_argument(
        '--verify-shapes',
        type=int,
        nargs=2,
        action='append',
        metavar=('H', 'W'),
        help='sizes a dynamic export is verified at (repeatable)')
    parser.add_argument(
        '--no-fuse',
        action='store_true',
        help='export without folding BatchNorm (switch_to_deploy)')
    parser.add_argument(
        '--deploy-cfg',
        help='MMDeploy deploy config of a detector (default: '
        'configs/deployment/instance-seg_onnxruntime_{static,dynamic}.py)')
    parser.add_argument(
        '--input-img',
        help='image the detector is traced and verified with (default: a '
        'random image of the input size)')
    return parser, parse_tool_args(parser, argv)


def default_output(config: str, kind: str, shape, dynamic: bool,
                   fmt: str) -> str:
    name = osp.splitext(osp.basename(config))[0]
    size = 'dynamic' if dynamic else f'{shape[0]}x{shape[-1]}'
    ext = '.mlpackage' if fmt == 'coreml' else '.onnx'
    return f'{name}_{kind}_{size}{ext}'


def verify_runtimes(args, kind: str) -> list:
    """The runtimes ``--verify`` runs at ``--precision``; refuses what
    cannot run before anything is exported."""
    precision = args.precision
    if args.format == 'coreml':
        if precision not in COREML_PRECISIONS:
            raise SetupError('--precision: a Core ML package computes in '
                             f'fp32 or fp16, not {precision}')
        return []
    if not args.verify:
        if precision != 'fp32' or args.verify_runtimes:
            raise SetupError('--precision and --verify-runtimes choose how '
                             '--verify runs the file; add --verify')
        return []
    if precision == 'int8':
        raise SetupError('--precision int8: this tool writes float files; '
                         'int8 runs a quantized file')
    if kind == 'detector':
        if precision != 'fp32' or set(args.verify_runtimes
                                      or ['onnxruntime']) != {'onnxruntime'}:
            raise SetupError('a detector is verified in ONNX Runtime fp32 '
                             "(MMDeploy's wrapper); drop --precision and "
                             '--verify-runtimes')
        return ['onnxruntime']
    if args.verify_runtimes:
        for runtime in args.verify_runtimes:
            try:
                check_precision(runtime, precision)
            except ValueError as e:
                raise SetupError(str(e)) from e
        return list(dict.fromkeys(args.verify_runtimes))
    runtimes = [r for r in RUNTIMES if precision in available_precisions(r)]
    if not runtimes:
        raise SetupError(f'no installed runtime runs {precision} here; '
                         'pip install -r requirements/deploy.txt, or choose '
                         'another --precision')
    return runtimes


def export(args) -> None:
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        raise SetupError(f'checkpoint {args.checkpoint} does not exist')
    cfg = load_config(args.config, args.cfg_options)
    kind = args.kind or default_kind(cfg)
    # The checks of tools/train.py and tools/test.py, on the meta device:
    # the size (a trace skips the backbone's own check) and the checkpoint.
    meta_model = build_meta_model(cfg, get_host(cfg))
    shape = check_input_size(meta_model, args.shape or DEFAULT_SHAPES[kind])
    for size in args.verify_shapes or []:
        check_input_size(meta_model, size, '--verify-shapes')
    check_checkpoint(
        meta_model,
        args.checkpoint,
        args.config,
        fix='export a checkpoint trained (or converted) for this config',
        partial_hint=None)
    del meta_model
    if args.format == 'coreml':
        if kind not in ('classifier', 'backbone'):
            raise SetupError('--format coreml exports the classifier and '
                             f'the backbone, not a {kind}')
        if args.dynamic_export or args.verify:
            raise SetupError('--format coreml exports one fixed size and '
                             'cannot be verified off macOS; drop '
                             '--dynamic-export / --verify')
    output_file = check_output_path(
        args.output_file or default_output(args.config, kind, shape,
                                           args.dynamic_export, args.format))
    if args.opset_version is not None:
        check_opset(args.opset_version)
    runtimes = verify_runtimes(args, kind)

    if kind == 'detector':
        deploy_cfg = args.deploy_cfg or osp.join(
            DEPLOY_CONFIGS, 'instance-seg_onnxruntime_'
            f"{'dynamic' if args.dynamic_export else 'static'}.py")
        inputs = dict(
            checkpoint=args.checkpoint,
            shape=None if args.dynamic_export else shape,
            image=args.input_img,
            fuse=not args.no_fuse)
        path = export_detector(
            cfg,
            deploy_cfg,
            output_file,
            opset_version=args.opset_version,
            **inputs)
        print(f'wrote {path}')
        if args.verify:
            worst = verify_detector(cfg, deploy_cfg, path, **inputs)
            print(f"verified onnxruntime fp32: {worst['num_dets']} "
                  f"detections match within {worst['box_diff']:.2f} px and "
                  f"{worst['score_diff']:.4f}, masks with IoU "
                  f"{worst['mask_iou']:.3f} or more")
        return

    model = build_export_model(
        cfg, kind, args.checkpoint, fuse=not args.no_fuse)
    if args.format == 'coreml':
        path = export_coreml(model, shape, output_file, args.precision)
        print(f'wrote {path} (compute precision {args.precision})')
        return
    path = export_onnx(
        model,
        shape,
        output_file,
        dynamic=args.dynamic_export,
        opset_version=args.opset_version or 17)
    print(f'wrote {path}')
    if args.verify:
        shapes = [shape]
        if args.dynamic_export:
            shapes = args.verify_shapes or DYNAMIC_VERIFY_SHAPES
        for runtime in runtimes:
            checks = [(shapes, 1)]
            if args.dynamic_export:
                checks.append((shapes[:1], 2))
            for sizes, batch in checks:
                results = verify_onnx(
                    model,
                    path,
                    sizes,
                    runtime=runtime,
                    precision=args.precision,
                    batch_size=batch)
                for (height, width), error in results:
                    print(f'verified {runtime} {args.precision} at '
                          f'{height}x{width}, batch {batch}: max difference '
                          f'{error:.1e} of the fp32 PyTorch output magnitude')


def main(argv=None) -> None:
    quiet_host_warnings()
    parser, args = parse_args(argv)
    if args.shape is not None and len(args.shape) not in (1, 2):
        parser.error('--shape takes one size or a height and a width')
    with exit_on_setup_error(parser):
        try:
            export(args)
        except AssertionError as e:
            # The file is complete and kept, for inspection.
            sys.exit(f'{parser.prog}: verification failed: {e}')


if __name__ == '__main__':
    main()
