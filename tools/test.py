"""Evaluate a checkpoint of one of our configs with its host's metric."""
import argparse
import os
import sys

import mmeformer  # noqa: F401  (registers the `mmeformer::` config prefix)
from mmeformer.runtime import SetupError, evaluate
from mmeformer.utils import CfgOptionsAction

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
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file to evaluate')
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
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
        metavar='KEY=VALUE',
        help='override config settings, e.g. '
        'test_dataloader.dataset.data_root=/data/coco/; lists as '
        'key="[a,b]", no spaces')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm'],
        default='none',
        help='how the processes were started: none (one process), pytorch '
        '(torchrun, see tools/dist_test.sh) or slurm (srun, see '
        'tools/slurm_test.sh); gloo on CPU machines, nccl on GPUs')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument(
        '--local_rank',
        '--local-rank',
        type=int,
        default=0,
        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return parser, args


def main(argv=None):
    parser, args = parse_args(argv)
    try:
        evaluate(
            args.config,
            args.checkpoint,
            work_dir=args.work_dir,
            out=args.out,
            show_dir=args.show_dir,
            cfg_options=args.cfg_options,
            launcher=args.launcher,
            partial_load=args.partial_load)
    except SetupError as e:
        sys.exit(f'{parser.prog}: error: {e}')


if __name__ == '__main__':
    main()
