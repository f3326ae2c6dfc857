"""Print the stack's versions and verify that it works.

Checks that torchvision's ops load with the installed torch, that mmcv's
compiled ops run, and that the model modules of MMPretrain, MMDetection and
MMSegmentation import. Exits with status 1 when a check fails.
"""
import argparse
import sys

from mmeformer.utils import collect_env, verify_environment

KEY_PACKAGES = ('Python', 'PyTorch', 'torchvision', 'CUDA available', 'mmcv',
                'MMEngine', 'mmpretrain', 'mmdet', 'mmseg', 'mmeformer')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--full',
        action='store_true',
        help='print the whole environment report (compilers, build flags)')
    parser.add_argument(
        '--quiet', action='store_true', help='print failed checks only')
    args = parser.parse_args()

    if not args.quiet:
        env = collect_env()
        names = env if args.full else KEY_PACKAGES
        for name in names:
            print(f'{name}: {env[name]}')
    failed = 0
    for name, passed, detail in verify_environment():
        failed += not passed
        if not passed or not args.quiet:
            print(f'[{"ok" if passed else "FAILED"}] {name}: {detail}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
