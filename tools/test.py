"""Evaluate a checkpoint of one of our configs with its host's metric."""
import argparse

import mmeformer  # noqa: F401  (registers the `mmeformer::` config prefix)
from mmeformer.runtime import (add_config_arguments, add_launcher_arguments,
                               evaluate, exit_on_setup_error, parse_tool_args)
from mmeformer.utils import quiet_host_warnings

EPILOG = """\
The host (MMPretrain, MMDetection or MMSegmentation) is the config's
default_scope, and so is the metric: top-1/top-5 accuracy, COCO box and mask
AP, or mIoU. The test data and the checkpoint are checked first: a missing
one is named with where to get it, and a checkpoint whose tensors do not fit
the config's model is refused (see --partial-load).

examples:
  python tools/test.py configs/segmentation/fpn_eformerv2_s0_ade20k_40k.py \\
      work_dirs/fpn_eformerv2_s0_ade20k_40k/iter_40000.pth
  python tools/test.py CONFIG CKPT --show-dir vis --out preds.pkl
  bash tools/dist_test.sh CONFIG CKPT 8               # 8 processes
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Evaluate an EfficientFormer checkpoint on the test '
        'split of its config, in the host the config names.',
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(
        parser,
        checkpoint='positional',
        checkpoint_help='checkpoint file to evaluate',
        cfg_options_example='test_dataloader.dataset.data_root=/data/coco/')
    parser.add_argument(
        '--work-dir',
        help='directory for logs and the metrics json (default: the '
        'config\'s work_dir, else ./work_dirs/<config name>)')
    parser.add_argument(
        '--out',
        metavar='FILE.pkl',
        help='also dump the raw predictions to this pickle file')
    parser.add_argument(
        '--show-dir',
        help='draw the predictions on the test images and save them here '
        '(MMSegmentation puts them under vis_data/vis_image/)')
    parser.add_argument(
        '--partial-load',
        action='store_true',
        help='evaluate a checkpoint that fits the model only in part; by '
        'default one whose tensors do not all fit is refused before '
        'anything is built')
    add_launcher_arguments(parser, 'test')
    args = parse_tool_args(parser, argv)
    return parser, args


def main(argv=None):
    quiet_host_warnings()
    parser, args = parse_args(argv)
    with exit_on_setup_error(parser):
        evaluate(
            args.config,
            args.checkpoint,
            work_dir=args.work_dir,
            out=args.out,
            show_dir=args.show_dir,
            cfg_options=args.cfg_options,
            launcher=args.launcher,
            partial_load=args.partial_load)


if __name__ == '__main__':
    main()
