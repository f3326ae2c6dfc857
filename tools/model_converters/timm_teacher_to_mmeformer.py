"""Check a distillation teacher's weights and write them for the configs.

The ImageNet configs distil from DeiT's RegNetY-16GF, built as timm's
``regnety_160`` through MMPretrain's ``TimmClassifier`` and loaded strictly
from ``checkpoints/regnety_160_deit_in1k.pth``. DeiT publishes the weights
nested under ``model`` and timm's hub copy is a bare state dict, neither of
which mmengine reads as a checkpoint. This tool reads either (safely: tensors
only), loads it strictly into the timm architecture, and writes an mmengine
checkpoint whose keys are those ``TimmClassifier`` saves and loads.
"""
import argparse
import difflib
import os.path as osp
import sys
import textwrap

from timm import create_model, is_model, list_models

from mmeformer.converters import ConversionError, save_checkpoint
from mmeformer.utils import (UnreadableCheckpointError, describe_problems,
                             extract_state_dict, quiet_host_warnings,
                             read_checkpoint, state_dict_problems)

DEFAULT_OUT = osp.join('checkpoints', 'regnety_160_deit_in1k.pth')
#: Tensors listed per kind of problem when the weights do not fit.
SHOWN = 5

EPILOG = """\
the teacher of the official recipe:
  https://dl.fbaipublicfiles.com/deit/regnety_160-a5fe301d.pth (DeiT), also
  timm's regnety_160.deit_in1k (model.safetensors / pytorch_model.bin).

examples:
  %(prog)s regnety_160-a5fe301d.pth
  %(prog)s model.safetensors --out checkpoints/regnety_160_deit_in1k.pth
  %(prog)s my_teacher.pth --model resnet50 --num-classes 100 \\
      --out checkpoints/resnet50_teacher.pth
"""


def convert_teacher(src: str,
                    model_name: str = 'regnety_160',
                    num_classes: int = 1000,
                    out: str = DEFAULT_OUT) -> int:
    """Write the weights of a timm classifier for ``TimmClassifier``.

    Args:
        src (str): A state dict, bare or nested under ``state_dict`` or
            ``model`` (``.pth``, ``.bin`` or ``.safetensors``).
        model_name (str): The timm architecture. Defaults to 'regnety_160'.
        num_classes (int): Its number of classes. Defaults to 1000.
        out (str): The file to write. Defaults to ``DEFAULT_OUT``.

    Returns:
        int: The size of the written file in bytes.

    Raises:
        UnreadableCheckpointError: If ``src`` cannot be read.
        ConversionError: If it does not fit the architecture.
    """
    state_dict, _ = extract_state_dict(read_checkpoint(src), src)
    model = create_model(model_name, num_classes=num_classes)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError:
        raise ConversionError(
            f"{src} does not hold the weights of timm's {model_name} with "
            f'{num_classes} classes (--model, --num-classes):\n' +
            describe_problems(
                state_dict_problems(model.state_dict(), state_dict), SHOWN)
        ) from None
    return save_checkpoint(
        dict(
            state_dict=model.state_dict(),
            meta=dict(
                model_name=model_name,
                num_classes=num_classes,
                source=osp.basename(src))), out)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Check the weights of a timm classifier (the '
        'distillation teacher) and write them\nas the checkpoint that '
        "MMPretrain's TimmClassifier loads strictly.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='the teacher weights')
    parser.add_argument(
        '--model',
        default='regnety_160',
        help='timm architecture (default: %(default)s)')
    parser.add_argument(
        '--num-classes',
        type=int,
        default=1000,
        help='classes it predicts (default: %(default)s)')
    parser.add_argument(
        '--out',
        default=DEFAULT_OUT,
        help='output file (default: %(default)s, what the configs read)')
    args = parser.parse_args(argv)
    if not is_model(args.model):
        close = difflib.get_close_matches(args.model, list_models(), n=3)
        parser.error(f'--model {args.model}: timm has no such architecture' +
                     (f"; did you mean {' or '.join(close)}?"
                      if close else ' (timm.list_models() lists them)'))
    if args.num_classes < 1:
        parser.error(f'--num-classes {args.num_classes}: a classifier '
                     'predicts at least one class')
    return args


def main(argv=None) -> int:
    quiet_host_warnings()
    args = parse_args(argv)
    try:
        size = convert_teacher(args.src, args.model, args.num_classes,
                               args.out)
    except (UnreadableCheckpointError, ConversionError) as e:
        print(
            f'error: {textwrap.indent(str(e), "  ").lstrip()}',
            file=sys.stderr)
        return 1
    print(f'{args.out}: {args.model}, {args.num_classes} classes '
          f'({size / 2**20:.1f} MiB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
