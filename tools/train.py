"""Train one of our configs (or any config inheriting one) in its host."""
import argparse

import mmeformer  # noqa: F401  (registers the `mmeformer::` config prefix)
from mmeformer.runtime import (add_config_arguments, add_launcher_arguments,
                               exit_on_setup_error, parse_tool_args, train)
from mmeformer.utils import quiet_host_warnings

EPILOG = """\
The host (MMPretrain, MMDetection or MMSegmentation) is the config's
default_scope. Datasets and checkpoints the run needs are checked first; a
missing one is named with where to get it, and a load_from checkpoint must
fit the model (see --partial-load). --resume without CKPT warns and starts
from scratch when the work dir holds no checkpoint.

examples:
  python tools/train.py configs/detection/maskrcnn_eformerv2_s0_coco.py
  python tools/train.py CONFIG --resume              # latest in the work dir
  python tools/train.py CONFIG --cfg-options train_dataloader.batch_size=4
  bash tools/dist_train.sh CONFIG 8                   # 8 processes
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train an EfficientFormer model: classification '
        '(MMPretrain), instance segmentation (MMDetection) or semantic '
        'segmentation (MMSegmentation), picked from the config.',
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(
        parser,
        cfg_options_example='train_cfg.max_epochs=1 '
        'model.backbone.init_cfg=None')
    parser.add_argument(
        '--work-dir',
        help='directory for logs and checkpoints (default: the config\'s '
        'work_dir, else ./work_dirs/<config name>)')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        metavar='CKPT',
        help='resume from CKPT, or without CKPT from the latest checkpoint '
        'in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision (needs a CUDA GPU)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the actual total batch size over '
        'the config\'s auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--partial-load',
        action='store_true',
        help='start from a load_from (or --resume) checkpoint that fits the '
        'model only in part; by default one whose tensors do not all fit is '
        'refused before anything is built')
    add_launcher_arguments(parser, 'train')
    args = parse_tool_args(parser, argv)
    return parser, args


def main(argv=None):
    quiet_host_warnings()
    parser, args = parse_args(argv)
    with exit_on_setup_error(parser):
        train(
            args.config,
            work_dir=args.work_dir,
            resume=args.resume,
            amp=args.amp,
            auto_scale_lr=args.auto_scale_lr,
            cfg_options=args.cfg_options,
            launcher=args.launcher,
            partial_load=args.partial_load)


if __name__ == '__main__':
    main()
