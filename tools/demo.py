"""Train and evaluate a model on the built-in shapes set, end to end."""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List

from mmengine.config import Config

from mmeformer.demo import (SHAPES_FORMAT_VERSION, generate_shapes,
                            is_shapes_dataset)
from mmeformer.utils import quiet_host_warnings

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

TASKS = {
    'detection':
    dict(
        config='configs/demo/maskrcnn_eformerv2_s0_shapes.py',
        metrics={
            'coco/bbox_mAP': 'bbox mAP',
            'coco/bbox_mAP_50': 'bbox mAP@0.5',
            'coco/segm_mAP': 'segm mAP',
            'coco/segm_mAP_50': 'segm mAP@0.5',
        }),
    'segmentation':
    dict(
        config='configs/demo/fpn_eformerv2_s0_shapes.py',
        metrics={
            'mIoU': 'mIoU (%)',
            'aAcc': 'pixel accuracy (%)'
        }),
}


def positive_int(value: str) -> int:
    """An ``argparse`` type: an int of at least 1."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f'{value} is not 1 or more')
    return number


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Demo: draw the synthetic shapes set if it is missing, '
        'train EfficientFormerV2-S0 from scratch on it with tools/train.py '
        '(Mask R-CNN for detection, Semantic FPN for segmentation), '
        'evaluate the held-out split with tools/test.py, and print the '
        'COCO bbox / segm mAP (or the mIoU) and where the drawn predictions '
        'are. Sized for a few minutes on 2 CPU cores; nothing is '
        'downloaded.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('task', choices=sorted(TASKS), help='what to train')
    parser.add_argument(
        '--work-dir',
        help='logs, checkpoints and predictions; '
        'defaults to work_dirs/demo_<task>')
    parser.add_argument(
        '--data-root',
        default='data/shapes',
        help='the shapes set; drawn there if missing (an existing set, '
        'e.g. from tools/dataset_converters/make_shapes.py, is used as is)')
    parser.add_argument(
        '--iters',
        type=positive_int,
        help='training iterations (the learning-rate schedule is scaled to '
        'them); defaults to the config\'s')
    parser.add_argument(
        '--seed', type=int, default=0, help='random seed of the training')
    parser.add_argument(
        '--resume',
        action='store_true',
        help='continue an interrupted demo from its last checkpoint')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='more key=value overrides, passed on to tools/train.py and '
        'tools/test.py')
    return parser.parse_args(argv)


def ensure_dataset(data_root: str) -> None:
    """Draw the shapes set unless a current one is already there."""
    meta_file = osp.join(data_root, 'meta.json')
    if is_shapes_dataset(data_root):
        with open(meta_file) as f:
            meta = json.load(f)
        if meta['format_version'] == SHAPES_FORMAT_VERSION:
            print(
                f'Using the shapes set in {data_root} ({meta["num_train"]}'
                f' training, {meta["num_val"]} validation images).',
                flush=True)
            return
    start = time.time()
    print(f'Drawing the shapes set into {data_root} ...', flush=True)
    # generate_shapes' defaults are the demo's set (and make_shapes.py's).
    generate_shapes(data_root, overwrite=is_shapes_dataset(data_root))
    print(f'... done in {time.time() - start:.1f} s.', flush=True)


def config_overrides(cfg: Config, data_root: str, iters: int,
                     seed: int) -> List[str]:
    """``--cfg-options`` that point the config at ``data_root`` and
    stretch its iteration-based schedule to ``iters``."""
    options = [f'randomness.seed={seed}']
    root = data_root.rstrip('/') + '/'
    if root != cfg.data_root:
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
            options.append(f'{loader}.dataset.data_root={root}')
        for evaluator in ('val_evaluator', 'test_evaluator'):
            ann_file = cfg.get(evaluator, {}).get('ann_file')
            if ann_file and ann_file.startswith(cfg.data_root):
                new_file = root + ann_file[len(cfg.data_root):]
                options.append(f'{evaluator}.ann_file={new_file}')

    max_iters = cfg.train_cfg.max_iters
    # tools/test.py evaluates afterwards; validating in training too would
    # only repeat it.
    options.append(f'train_cfg.val_begin={(iters or max_iters) + 1}')
    if iters is not None and iters != max_iters:
        scale = iters / max_iters
        options.append(f'train_cfg.max_iters={iters}')
        for i, scheduler in enumerate(cfg.param_scheduler):
            begin = round(scheduler.get('begin', 0) * scale)
            options.append(f'param_scheduler.{i}.begin={begin}')
            # Every phase keeps at least one iteration.
            for key, least in (('end', begin + 1), ('T_max', 1)):
                if key in scheduler:
                    value = max(least, round(scheduler[key] * scale))
                    options.append(f'param_scheduler.{i}.{key}={value}')
        interval = cfg.default_hooks.checkpoint.interval
        options.append('default_hooks.checkpoint.interval='
                       f'{max(1, round(interval * scale))}')
    return options


def run(cmd: List[str]) -> None:
    """Run a tool with its output streaming to ours."""
    print('\n$ ' + ' '.join(cmd), flush=True)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    # On a few cores torch's OpenMP threads share them with the data loader
    # worker (and whatever else runs): spinning while they wait made
    # training several times slower on 2 cores; sleeping costs little.
    env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    result = subprocess.run(cmd, cwd=REPO, env=env)
    if result.returncode != 0:
        # The tool's status: 2 for a usage error (e.g. in --cfg-options),
        # 1 for a run refused or failed.
        print(
            f'{osp.basename(cmd[1])} failed with exit status '
            f'{result.returncode}.',
            file=sys.stderr)
        sys.exit(result.returncode if result.returncode > 0 else 1)


def read_test_metrics(test_dir: str) -> Dict[str, float]:
    """The metrics of the newest evaluation under ``test_dir``."""
    logs = sorted(glob.glob(osp.join(test_dir, '*', '*.json')))
    if not logs:
        sys.exit(f'No evaluation log found under {test_dir}.')
    with open(logs[-1]) as f:
        return json.load(f)


def find_drawn_images(show_dir: str) -> str:
    """The folder below ``show_dir`` that holds the drawn images.

    MMDetection writes them into ``show_dir`` itself, MMSegmentation's
    visualizer into ``vis_data/vis_image/`` below it.
    """
    for folder, _, names in sorted(os.walk(show_dir)):
        if any(name.endswith(('.jpg', '.png')) for name in names):
            return folder
    return show_dir


def main(argv=None) -> None:
    quiet_host_warnings()
    args = parse_args(argv)
    task = TASKS[args.task]
    work_dir = args.work_dir or osp.join('work_dirs', f'demo_{args.task}')
    work_dir = osp.abspath(work_dir)
    data_root = osp.abspath(args.data_root)
    config = osp.join(REPO, task['config'])
    start = time.time()

    try:
        ensure_dataset(data_root)
    except FileExistsError as e:
        # --data-root names a folder that is not a shapes set.
        sys.exit(f'{osp.basename(__file__)}: error: {e}')
    cfg = Config.fromfile(config)
    options = config_overrides(cfg, data_root, args.iters, args.seed)
    options += args.cfg_options

    train_cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir
    ]
    if args.resume:
        train_cmd.append('--resume')
    run(train_cmd + ['--cfg-options'] + options)
    train_time = time.time() - start

    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    test_dir = osp.join(work_dir, 'test')
    show_dir = osp.join(work_dir, 'predictions')
    run([
        sys.executable,
        osp.join(REPO, 'tools', 'test.py'), config, checkpoint, '--work-dir',
        test_dir, '--show-dir', show_dir, '--cfg-options'
    ] + options)
    metrics = read_test_metrics(test_dir)

    print(f'\nDemo ({args.task}) finished in {time.time() - start:.0f} s '
          f'(training {train_time:.0f} s) on the held-out split of '
          f'{data_root}:')
    for key, name in task['metrics'].items():
        if key in metrics:
            print(f'  {name:20s} {metrics[key]:.3f}')
    print(f'  checkpoint           {checkpoint}')
    print(f'  drawn predictions    {find_drawn_images(show_dir)}')


if __name__ == '__main__':
    main()
