"""Evaluate an exported ONNX or OpenVINO file on its config's test data.

MMDeploy's ``tools/test.py`` for the files of ``pytorch2onnx.py`` and
``quantize.py``: the config's dataset, pipeline, data preprocessor and
evaluator, with the exported part of the network run by the file.
"""
import argparse
import os.path as osp
from numbers import Real

import mmeformer  # noqa: F401  (registers the `mmeformer::` config prefix)
from mmeformer.deployment.runtimes import PRECISIONS, RUNTIMES
from mmeformer.deployment.scoring import score_file
from mmeformer.runtime import (add_config_arguments, exit_on_setup_error,
                               parse_tool_args)
from mmeformer.utils import quiet_host_warnings

DEPLOY_CONFIGS = osp.join(
    osp.dirname(osp.abspath(__file__)), '..', '..', 'configs', 'deployment')

EPILOG = """\
What the file holds is read from its outputs: a classifier ("logits") or a
segmentor ("seg_logits") replaces the network up to the logits, and the
host's head post-processes them; a backbone ("feat0"..) replaces the
backbone, and neck and heads run in PyTorch with --checkpoint; an MMDeploy
end-to-end detector ("dets", "labels", "masks") runs in MMDeploy's backend
model (ONNX Runtime, fp32). A file of another model or input size than the
config is refused before the test starts.

--precision defaults to int8 for a quantized file and fp32 otherwise;
OpenVINO is told the precision explicitly (its CPU default is bf16 on CPUs
that have it).

examples:
  python tools/deployment/test_backend.py \\
      configs/demo/fpn_eformerv2_s0_shapes.py fpn_segmentor_256x256.onnx
  python tools/deployment/test_backend.py \\
      configs/demo/maskrcnn_eformerv2_s0_shapes.py backbone_int8.xml \\
      --runtime openvino --checkpoint work_dirs/demo_detection/iter_200.pth
  python tools/deployment/test_backend.py \\
      configs/demo/maskrcnn_eformerv2_s0_shapes.py end2end.onnx
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Score an exported model (ONNX or OpenVINO IR) on the '
        'test split of its config, with the config\'s own evaluator',
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(
        parser,
        checkpoint='option',
        checkpoint_help='checkpoint of the whole model: the weights of '
        'what runs in PyTorch (needed for a backbone file); also measures '
        'the file\'s deviation from PyTorch on the first test image',
        cfg_options_example='test_dataloader.dataset.data_root=data/shapes/')
    parser.add_argument('model', help='the exported .onnx or .xml file')
    parser.add_argument(
        '--runtime',
        choices=RUNTIMES,
        help='default: openvino for an .xml file, onnxruntime otherwise')
    parser.add_argument(
        '--precision',
        choices=PRECISIONS,
        help='default: int8 for a quantized file, fp32 otherwise')
    parser.add_argument(
        '--threads', type=int, help='runtime CPU threads (default: all)')
    parser.add_argument(
        '--work-dir', help='directory for logs and the metrics json')
    parser.add_argument(
        '--out', metavar='FILE.pkl', help='dump the raw predictions too')
    parser.add_argument(
        '--show-dir', help='draw the predictions on the test images here')
    parser.add_argument(
        '--deploy-cfg',
        help='MMDeploy deploy config of an end-to-end detector (default: '
        'configs/deployment/instance-seg_onnxruntime_{static,dynamic}.py '
        'after the file\'s input)')
    return parser, parse_tool_args(parser, argv)


def default_deploy_cfg(path: str) -> str:
    """The repository's instance-segmentation deploy config that fits the
    file: static for a file of one input size, dynamic otherwise."""
    from mmeformer.deployment.scoring import read_signature
    inputs, _ = read_signature(path)
    static = all(d is not None for shape in inputs.values() for d in shape[2:])
    name = 'static' if static else 'dynamic'
    return osp.join(DEPLOY_CONFIGS, f'instance-seg_onnxruntime_{name}.py')


def main(argv=None):
    quiet_host_warnings()
    parser, args = parse_args(argv)
    with exit_on_setup_error(parser):
        runtime = args.runtime or ('openvino' if args.model.endswith('.xml')
                                   else 'onnxruntime')
        deploy_cfg = args.deploy_cfg
        if deploy_cfg is None and osp.isfile(args.model):
            deploy_cfg = default_deploy_cfg(args.model)
        metrics = score_file(
            args.config,
            args.model,
            runtime=runtime,
            precision=args.precision,
            checkpoint=args.checkpoint,
            work_dir=args.work_dir,
            cfg_options=args.cfg_options,
            threads=args.threads,
            out=args.out,
            show_dir=args.show_dir,
            deploy_cfg=deploy_cfg)
    print(f'{args.model} ({runtime}) on the test split of {args.config}:')
    for key, value in metrics.items():
        print(f'  {key:24s} {value:.4g}'
              if isinstance(value, Real) else f'  {key:24s} {value}')


if __name__ == '__main__':
    main()
