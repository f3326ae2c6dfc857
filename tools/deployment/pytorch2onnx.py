"""Export a classifier, backbone, segmentor or detector to ONNX or Core ML.

The OpenMMLab ``pytorch2onnx.py`` of MMPretrain / MMSegmentation 0.x, for
the mmeformer configs. Detectors go through MMDeploy.
"""
import argparse
import os.path as osp

import mmeformer  # noqa: F401  (registers the `mmeformer::` config prefix)
from mmeformer.deployment import (EXPORT_KINDS, build_export_model,
                                  check_opset, check_output_path, default_kind,
                                  export_coreml, export_detector, export_onnx,
                                  verify_detector, verify_onnx)
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

--shape exports one size, with the attention biases of that size as
constants; --dynamic-export takes any batch, height and width (32 px and
up) and resizes the biases in the graph as PyTorch does. --verify runs the
file in ONNX Runtime and compares it with PyTorch: at the exported size, or
for a dynamic file at 224x224, 512x512, 513x671 and 800x1216 (or
--verify-shapes).

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
        help='compare ONNX Runtime with PyTorch')
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
            print(f"verified: {worst['num_dets']} detections match within "
                  f"{worst['box_diff']:.2f} px and {worst['score_diff']:.4f}")
        return

    model = build_export_model(
        cfg, kind, args.checkpoint, fuse=not args.no_fuse)
    if args.format == 'coreml':
        print(f'wrote {export_coreml(model, shape, output_file)}')
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
        for (height, width), error in verify_onnx(model, path, shapes):
            print(f'verified at {height}x{width}: max difference '
                  f'{error:.1e} of the output magnitude')


def main(argv=None) -> None:
    quiet_host_warnings()
    parser, args = parse_args(argv)
    if args.shape is not None and len(args.shape) not in (1, 2):
        parser.error('--shape takes one size or a height and a width')
    with exit_on_setup_error(parser):
        export(args)


if __name__ == '__main__':
    main()
