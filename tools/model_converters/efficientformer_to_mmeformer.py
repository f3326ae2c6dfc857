"""Convert EfficientFormer V1 / V2 checkpoints into mmeformer's layout."""
import argparse
import sys
import textwrap

from mmeformer.converters import (BIAS_MODES, SOURCES, ConversionError,
                                  ConversionReport, all_variants,
                                  convert_checkpoint, parse_variant)
from mmeformer.utils import Grid, parse_size, quiet_host_warnings

EPILOG = """\
outputs (default, relative to the current folder):
  classifiers   checkpoints/<model>_in1k.pth, e.g. efficientformer_l1_in1k.pth,
                efficientformerv2_s0_in1k.pth: the configs' default init
                checkpoints; their backbone.* part also starts dense models
  detectors     checkpoints/maskrcnn_<model>_coco.pth (mmdet 3.x Mask R-CNN)
  segmentors    checkpoints/fpn_<model>_ade20k.pth (mmseg 1.x Semantic FPN)
  A file whose bias tables were moved to another --attn-ref-size gets
  _ref<size>_<dense-bias> before .pth.

attention-bias tables:
  Tables are learned for one reference input size: 224 for the classifiers,
  800 (detection) and 512 (segmentation) for the official dense models. The
  224 tables of a classifier file do not fit a dense backbone: loading it
  with init_cfg=dict(type='Pretrained', prefix='backbone.') warns of a size
  mismatch and leaves them at zero. With --attn-ref-size 800 the classifier
  is written for a backbone built with attn_ref_size=800 instead, and
  --dense-bias says how its tables are filled: 'zero' (default) starts them
  from zero as the official dense models did (their ImageNet biases were
  discarded); 'resize' resamples the ImageNet tables to the larger grid.

Files are read with torch.load(weights_only=True) (or safetensors), so a file
that needs code to load is refused; nothing is written unless the whole
conversion succeeds. The variant is detected from the tensors; --variant
makes the conversion fail unless the file holds that variant.

examples:
  %(prog)s efficientformer_l1_1000d.pth --source official
  %(prog)s model.safetensors --source timm
  %(prog)s eformer_s2_450.pth --source official --attn-ref-size 800 \\
      --dense-bias resize
  %(prog)s efficientformerv2_s2_coco.pth --source official-det
"""


def summary(report: ConversionReport) -> str:
    """A few lines on what a conversion read, found and wrote."""
    where = (f"checkpoint['{report.container}']"
             if report.container else 'the file')
    ref = 'x'.join(map(str, report.attn_ref_size))
    lines = [
        f'Read {report.num_read} tensors from {where} of {report.src} '
        f'({report.source} layout)',
        f'Variant: {report.variant.name}',
        f'Mapped {report.num_mapped} tensors '
        f'({report.num_params / 1e6:.2f}M parameters)',
    ]
    lines += [
        f'Dropped {count}: {reason}'
        for reason, count in sorted(report.dropped.items())
    ]
    lines += [
        f'Attention-bias tables for {ref} inputs: {line}'
        for line in report.bias
    ]
    lines.append(f'Wrote {report.out} ({report.num_bytes / 2**20:.1f} MiB)')
    return '\n'.join(lines)


def size_argument(value: str) -> Grid:
    """``--attn-ref-size`` as ``(height, width)``; a bad spelling is a
    usage error."""
    try:
        return parse_size(value, 'SIZE')
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv=None) -> argparse.Namespace:
    sources = '\n'.join(f'  {name:<13} {layout.description}'
                        for name, layout in SOURCES.items())
    variants = ', '.join(v.arch for v in all_variants())
    parser = argparse.ArgumentParser(
        description='Convert EfficientFormer (V1 L1/L3/L7, V2 S0/S1/S2/L) '
        'checkpoints of the official\nrepository, timm or mmpretrain into '
        'checkpoints that mmeformer classifiers, and\nmmdet 3.x / mmseg 1.x '
        'models with mmeformer backbones, load strictly.\n\nsources:\n' +
        sources,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='checkpoint to convert')
    parser.add_argument(
        '--source',
        required=True,
        choices=list(SOURCES),
        help='layout of the input file')
    parser.add_argument(
        '--out',
        help='output file in an existing folder, or an existing folder to '
        'write the default file name into (default: see "outputs" below)')
    parser.add_argument(
        '--variant',
        help=f'variant the file must hold ({variants}); detected when '
        'left out')
    parser.add_argument(
        '--attn-ref-size',
        type=size_argument,
        metavar='SIZE',
        help='reference input size of the written bias tables, SIZE or '
        'HxW (default: the source\'s, 224 for classifiers)')
    parser.add_argument(
        '--dense-bias',
        choices=BIAS_MODES,
        default=BIAS_MODES[0],
        help='how bias tables are moved to another --attn-ref-size '
        '(default: %(default)s, as the official dense models)')
    parser.add_argument(
        '--quiet', action='store_true', help='print only errors')
    args = parser.parse_args(argv)
    if args.variant is not None:
        try:
            parse_variant(args.variant)
        except ConversionError as e:
            parser.error(f'--variant: {e}')
    return args


def main(argv=None) -> int:
    quiet_host_warnings()
    args = parse_args(argv)
    say = (lambda line: None) if args.quiet else print
    try:
        report = convert_checkpoint(
            args.src,
            args.source,
            out=args.out,
            variant=args.variant,
            attn_ref_size=args.attn_ref_size,
            dense_bias=args.dense_bias,
            progress=say)
    except ConversionError as e:
        print(
            f'error: {textwrap.indent(str(e), "  ").lstrip()}',
            file=sys.stderr)
        return 1
    say(summary(report))
    return 0


if __name__ == '__main__':
    sys.exit(main())
