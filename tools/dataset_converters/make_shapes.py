"""Draw the synthetic shapes set used by the demos and tests."""
import argparse
import os.path as osp
import sys
import time

from mmeformer.demo import generate_shapes
from mmeformer.demo.shapes import CLS_CLASSES, generate_shape_classes
from mmeformer.utils import quiet_host_warnings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Draw the synthetic "shapes" set: squares, circles and '
        'triangles on noise, with a training and a held-out validation '
        'split, written as COCO instance json (for MMDetection) and as '
        'ADE20K-style PNG label maps (for MMSegmentation) over one image '
        'folder. Nothing is downloaded; the same seed gives byte-identical '
        'files. Label maps hold 0 for background and 1..3 for square, '
        'circle, triangle. With --classification: a classification set '
        f'instead, one shape per image in {len(CLS_CLASSES)} classes '
        '(5 outlines x 4 colour families) with nuisance, in ImageNet\'s '
        'folder layout: train/, val/ (held out, e.g. for tools/search.py) '
        'and test/, sizes per class.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument(
        '--out-dir', default='data/shapes', help='root of the set')
    parser.add_argument(
        '--num-train', type=int, default=300, help='training images')
    parser.add_argument(
        '--num-val', type=int, default=60, help='held-out validation images')
    parser.add_argument(
        '--img-size',
        type=int,
        help='side of the square images (default: 256, or 112 with '
        '--classification)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--min-size',
        type=int,
        default=24,
        help='smallest shape (side, or circle diameter) in pixels')
    parser.add_argument(
        '--max-size', type=int, default=80, help='largest shape in pixels')
    parser.add_argument(
        '--max-shapes', type=int, default=4, help='most shapes per image')
    parser.add_argument(
        '--max-rotation',
        type=float,
        default=15.,
        help='largest rotation of squares and triangles away from upright, '
        'in degrees (180 for any orientation)')
    parser.add_argument(
        '--classification',
        action='store_true',
        help='draw the classification set; --num-train, --num-val and '
        '--num-test count images per class')
    parser.add_argument(
        '--num-test',
        type=int,
        default=40,
        help='test images per class (classification set only)')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='redraw an existing shapes set at --out-dir')
    return parser, parser.parse_args(argv)


def draw(args: argparse.Namespace) -> str:
    """Draw the set ``args`` describe; what was written, in one line."""
    start = time.time()
    if args.img_size is None:
        args.img_size = 112 if args.classification else 256
    if args.classification:
        generate_shape_classes(
            args.out_dir,
            num_train=args.num_train,
            num_val=args.num_val,
            num_test=args.num_test,
            img_size=args.img_size,
            seed=args.seed,
            overwrite=args.overwrite)
        return (f'Wrote {args.num_train}, {args.num_val} and {args.num_test} '
                f'images per class ({len(CLS_CLASSES)} classes) to '
                f'{osp.abspath(args.out_dir)} in {time.time() - start:.1f} s.')
    info = generate_shapes(
        args.out_dir,
        num_train=args.num_train,
        num_val=args.num_val,
        img_size=args.img_size,
        seed=args.seed,
        min_size=args.min_size,
        max_size=args.max_size,
        max_shapes=args.max_shapes,
        max_rotation=args.max_rotation,
        overwrite=args.overwrite)
    return (f'Wrote {args.num_train} training and {args.num_val} validation '
            f'images ({info["num_instances"]["train"]} and '
            f'{info["num_instances"]["val"]} shapes) to '
            f'{osp.abspath(args.out_dir)} in {time.time() - start:.1f} s.')


def main(argv=None) -> None:
    quiet_host_warnings()
    parser, args = parse_args(argv)
    try:
        print(draw(args))
    except ValueError as e:
        # Sizes that do not go together, refused before anything is drawn.
        parser.error(str(e))
    except FileExistsError as e:
        sys.exit(f'{parser.prog}: error: {e}')


if __name__ == '__main__':
    main()
