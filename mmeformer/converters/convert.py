"""Converting a checkpoint from start to end: read, rename, check, write.

Nothing is written unless every tensor the target model loads was found
with the right shape and every tensor of the file was accounted for; the
error then lists all problems at once.
"""
import hashlib
import os.path as osp
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import (Callable, Dict, List, Mapping, Optional, Sequence, Tuple,
                    Union)

import torch

from mmeformer.models.layers.attention_bias import to_grid
from mmeformer.utils import parse_size
from mmeformer.version import __version__
from .bias import BIAS_MODES, adapt_bias_tables
from .errors import ConversionError, describe_problems
from .keymaps import SOURCES, KeyMapping, SourceLayout, map_keys
from .layouts import detect_source, is_mmeformer_layout
from .reading import extract_state_dict, read_checkpoint
from .targets import bias_grids, build_backbone, expected_shapes
from .variants import Variant, detect_variant, parse_variant
from .writing import save_checkpoint

Grid = Tuple[int, int]

#: Default file name of each task's converted checkpoint, in ``checkpoints/``
#: (the classifiers' are the default ``init_cfg`` checkpoints of the configs).
OUTPUT_NAMES = {
    'classification': '{name}_in1k{suffix}.pth',
    'detection': 'maskrcnn_{name}_coco{suffix}.pth',
    'segmentation': 'fpn_{name}_ade20k{suffix}.pth',
}

#: Parts a whole detector or segmentor needs besides the backbone.
REQUIRED_PARTS = {
    'detection': ('neck.', 'rpn_head.', 'roi_head.'),
    'segmentation': ('neck.', 'decode_head.'),
}


@dataclass
class ConversionReport:
    """What a conversion read, found and wrote.

    Args:
        src (str): The input file.
        source (str): The source layout name.
        container (str | None): Key the state dict was nested under.
        num_read (int): Tensors in the input state dict.
        variant (Variant): The variant converted.
        attn_ref_size (tuple[int, int]): Reference input size of the
            output's bias tables.
        num_mapped (int): Tensors written.
        dropped (dict[str, int]): Input tensors left out, counted by reason.
        bias (list[str]): What happened to the attention-bias tables.
        out (str): The written file.
        num_bytes (int): Its size.
        num_params (int): Parameters written (BatchNorm statistics and
            counters not counted).
    """

    src: str
    source: str
    container: Optional[str]
    num_read: int
    variant: Variant
    attn_ref_size: Grid
    num_mapped: int
    dropped: Dict[str, int] = field(default_factory=dict)
    bias: List[str] = field(default_factory=list)
    out: str = ''
    num_bytes: int = 0
    num_params: int = 0

    def summary(self) -> str:
        """A few lines for the user."""
        where = (f"checkpoint['{self.container}']"
                 if self.container else 'the file')
        ref = 'x'.join(map(str, self.attn_ref_size))
        lines = [
            f'Read {self.num_read} tensors from {where} of {self.src} '
            f'({self.source} layout)',
            f'Variant: {self.variant.name}',
            f'Mapped {self.num_mapped} tensors '
            f'({self.num_params / 1e6:.2f}M parameters)',
        ]
        lines += [
            f'Dropped {count}: {reason}'
            for reason, count in sorted(self.dropped.items())
        ]
        lines += [
            f'Attention-bias tables for {ref} inputs: {line}'
            for line in self.bias
        ]
        lines.append(f'Wrote {self.out} ({self.num_bytes / 2**20:.1f} MiB)')
        return '\n'.join(lines)


def parse_ref_size(value: Union[None, int, str, Sequence[int]],
                   default: int) -> Grid:
    """``attn_ref_size`` from ``800``, ``'800'``, ``'800x1333'`` or a pair.

    Args:
        value (int | str | Sequence[int] | None): The size; None for the
            default.
        default (int): Size used when ``value`` is None.

    Returns:
        tuple[int, int]: ``(h, w)``.

    Raises:
        ConversionError: If the value cannot be read.
    """
    if value is None:
        return to_grid(default)
    try:
        return parse_size(value, 'attn_ref_size')
    except ValueError as e:
        raise ConversionError(str(e)) from e


def default_output_path(layout: SourceLayout, variant: Variant, ref_size: Grid,
                        bias_mode: str) -> str:
    """Where a conversion writes when no output is given.

    Args:
        layout (SourceLayout): The source layout.
        variant (Variant): The variant.
        ref_size (tuple[int, int]): Reference size of the output's biases.
        bias_mode (str): How tables were moved to ``ref_size``.

    Returns:
        str: ``checkpoints/<file>``: ``<model>_in1k.pth``,
        ``maskrcnn_<model>_coco.pth`` or ``fpn_<model>_ade20k.pth``, with
        ``_ref<size>_<bias mode>`` added when the reference size is not the
        source's.
    """
    suffix = ''
    if ref_size != to_grid(layout.ref_size):
        size = (
            str(ref_size[0])
            if ref_size[0] == ref_size[1] else f'{ref_size[0]}x{ref_size[1]}')
        suffix = f'_ref{size}_{bias_mode}'
    return osp.join(
        'checkpoints',
        OUTPUT_NAMES[layout.task].format(name=variant.name, suffix=suffix))


def output_path(out: Optional[str], default: str) -> str:
    """The file a conversion writes.

    Args:
        out (str, optional): The output asked for: a file in an existing
            folder, or an existing folder to write the default file name
            into. None for ``default``.
        default (str): :func:`default_output_path`; its folder is created
            if missing.

    Returns:
        str: The output file.

    Raises:
        ConversionError: If ``out`` names a file in a folder that does not
            exist or below a file.
    """
    if out is None:
        return default
    if osp.isdir(out):
        return osp.join(out, osp.basename(default))
    folder = osp.dirname(osp.abspath(out))
    if not osp.isdir(folder):
        blocker = folder
        while not osp.exists(blocker):
            blocker = osp.dirname(blocker)
        if osp.isdir(blocker):
            raise ConversionError(
                f'Cannot write {out}: the folder {folder} does not exist. '
                'Create it first (mkdir -p) or choose another --out.')
        raise ConversionError(
            f'Cannot write {out}: {blocker} is a file, not a folder. '
            'Choose another --out.')
    return out


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _own_storage(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor``, copied if it is a view into a larger storage.

    ``torch.save`` writes whole storages, so a view (e.g. a slice of a
    checkpoint saved with shared storages) would drag all of it along.
    """
    tensor = tensor.detach()
    if tensor.is_contiguous() and tensor.storage_offset() == 0 and \
            tensor.untyped_storage().nbytes() == \
            tensor.numel() * tensor.element_size():
        return tensor
    return tensor.clone(memory_format=torch.contiguous_format)


def _dense_problems(mapping: KeyMapping, task: str,
                    variant: Variant) -> Tuple[List[str], List[str]]:
    """Missing parts and neck inputs that do not fit the backbone."""
    passthrough = [k for k in mapping.tensors if not k.startswith('backbone.')]
    missing = [
        f'{part}* (no tensor of this part)' for part in REQUIRED_PARTS[task]
        if not any(k.startswith(part) for k in passthrough)
    ]
    mismatched = []
    for i, channels in enumerate(variant.channels):
        name = f'neck.lateral_convs.{i}.conv.weight'
        tensor = mapping.tensors.get(name)
        if tensor is not None and tensor.dim() > 1 and \
                tensor.shape[1] != channels:
            mismatched.append(
                f'{name}: {tuple(tensor.shape)} takes {tensor.shape[1]} '
                f'input channels, the backbone gives {channels}')
    return missing, mismatched


def _problems(mapping: KeyMapping, expected: Mapping[str, tuple], task: str,
              variant: Variant) -> str:
    """Everything that keeps the target model from loading the tensors.

    Args:
        mapping (KeyMapping): The renamed tensors.
        expected (Mapping[str, tuple]): Names and shapes the model loads.
        task (str): The target task; detectors and segmentors keep their
            other parts, which are checked for presence and fit.
        variant (Variant): The variant.

    Returns:
        str: The problems, formatted; empty if there are none.
    """
    dense = task != 'classification'
    missing = [k for k in expected if k not in mapping.tensors]
    unexpected = [
        f'{mapping.origins[k]} (as {k})' for k in mapping.tensors
        if k not in expected and not (dense and not k.startswith('backbone.'))
    ] + mapping.unknown
    mismatched = [
        f'{mapping.origins[k]} (as {k}): {tuple(mapping.tensors[k].shape)}, '
        f'expected {shape}' for k, shape in expected.items()
        if k in mapping.tensors and tuple(mapping.tensors[k].shape) != shape
    ]
    if dense:
        missing_parts, neck_mismatched = _dense_problems(
            mapping, task, variant)
        missing += missing_parts
        mismatched += neck_mismatched
    return describe_problems([
        ('missing keys (needed by the model, not in the file)', missing),
        ('unexpected keys (in the file, not in the model)', unexpected),
        ('shape mismatches', mismatched),
        ('keys that would share one name', mapping.clashes),
    ])


def _dataset_meta(checkpoint: dict) -> Optional[dict]:
    """Class names (and palette) of an mmdet 2.x / mmseg 0.x checkpoint.

    mmdet 3.x and mmseg 1.x read them from ``meta['dataset_meta']``.
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict):
        return None
    if isinstance(meta.get('dataset_meta'), dict):
        return meta['dataset_meta']
    found = {
        name.lower(): meta[name]
        for name in ('CLASSES', 'PALETTE') if meta.get(name) is not None
    }
    return found or None


def convert_checkpoint(
        src: str,
        source: str,
        out: Optional[str] = None,
        variant: Optional[str] = None,
        attn_ref_size: Union[None, int, str, Sequence[int]] = None,
        dense_bias: str = BIAS_MODES[0],
        progress: Optional[Callable[[str], None]] = None) -> ConversionReport:
    """Convert an EfficientFormer checkpoint into mmeformer's layout.

    Args:
        src (str): The checkpoint to convert.
        source (str): Its layout, a key of
            :data:`mmeformer.converters.keymaps.SOURCES`.
        out (str, optional): Output file, or an existing folder to write
            the default file name into; its folder must exist. Defaults to
            :func:`default_output_path`, whose folder is created.
        variant (str, optional): The variant the file must hold, e.g.
            ``'l1'``; detected from the tensors when None. Defaults to None.
        attn_ref_size (int | str | Sequence[int], optional): Reference input
            size of the output's attention biases, e.g. 800 to start a
            detector from a classifier. Defaults to the source's own (224
            for classifiers, 800 / 512 for the official detectors /
            segmentors).
        dense_bias (str): How tables are moved to another reference size:
            ``'zero'`` (as the official dense models) or ``'resize'``. See
            :mod:`mmeformer.converters.bias`. Defaults to ``'zero'``.
        progress (Callable[[str], None], optional): Called with a line at
            each step. Defaults to None.

    Returns:
        ConversionReport: What was read, found and written.

    Raises:
        ConversionError: If anything is wrong; nothing is written then.
    """
    say = progress or (lambda line: None)
    if source not in SOURCES:
        raise ConversionError(
            f'Unknown source {source!r}; choose one of {list(SOURCES)}.')
    if dense_bias not in BIAS_MODES:
        raise ConversionError(f'Unknown bias mode {dense_bias!r}; choose '
                              f'one of {list(BIAS_MODES)}.')
    layout = SOURCES[source]
    named = parse_variant(variant) if variant else None
    ref_size = parse_ref_size(attn_ref_size, layout.ref_size)

    say(f'Reading {src} as a {layout.description}')
    checkpoint = read_checkpoint(src)
    state_dict, container = extract_state_dict(checkpoint, src)
    if is_mmeformer_layout(state_dict):
        raise ConversionError(
            f'{src} is already in mmeformer\'s layout (backbone.stem.*, '
            'backbone.stages.*): it needs no conversion. Use it as it is, '
            'as load_from, the checkpoint of tools/test.py or '
            'init_cfg.checkpoint.')
    mapping = map_keys(state_dict, layout)
    wrong_layout = (f'Check --source: the file does not look like a '
                    f'{layout.description}.')
    guessed = detect_source(state_dict)
    if guessed is not None and guessed != layout.name:
        wrong_layout += f' Its names are those of --source {guessed}.'
    # Most names unknown: the layout, not a detail of the file, is wrong.
    if len(mapping.unknown) >= len(mapping.tensors):
        raise ConversionError(
            f'{len(mapping.unknown)} of the {len(state_dict)} tensors of '
            f'{src} have no name of the {layout.name!r} layout. '
            f'{wrong_layout}\n' +
            describe_problems([('unexpected keys', mapping.unknown)], 10))
    try:
        found = detect_variant(mapping.tensors, mapping.family, named)
    except ConversionError as e:
        if mapping.unknown:
            raise ConversionError(f'{e}\n{wrong_layout}\n' + describe_problems(
                [('unexpected keys', mapping.unknown)], 10)) from e
        raise
    say(f'{"Checked" if named else "Detected"} variant {found.name}')

    head = mapping.tensors.get('head.head.weight')
    backbone = build_backbone(found, layout.task, ref_size)
    expected = expected_shapes(
        backbone,
        found,
        layout.task,
        num_classes=int(head.shape[0]) if head is not None else 1000,
        distillation='head.dist_head.weight' in mapping.tensors)
    dst_grids = bias_grids(backbone)
    src_ref_size = to_grid(layout.ref_size)
    src_grids = dst_grids if src_ref_size == ref_size else bias_grids(
        build_backbone(found, layout.task, src_ref_size))
    bias = adapt_bias_tables(mapping.tensors, expected, src_grids, dst_grids,
                             dense_bias)

    problems = _problems(mapping, expected, layout.task, found)
    if problems:
        raise ConversionError(
            f'{src} cannot be converted to {found.name} '
            f'({layout.task}): nothing was written.\n{problems}')

    default_out = default_output_path(layout, found, ref_size, dense_bias)
    out = output_path(out, default_out)
    if osp.exists(out) and osp.samefile(out, src):
        raise ConversionError(
            f'The output {out} is the input file; choose another output.')
    # Backbone and head in model order, then the kept detector / segmentor
    # parts in file order.
    order = list(expected) + [k for k in mapping.tensors if k not in expected]
    tensors = OrderedDict((k, _own_storage(mapping.tensors[k])) for k in order)
    meta = dict(
        mmeformer_version=__version__,
        variant=found.name,
        arch=found.arch,
        task=layout.task,
        attn_ref_size=list(ref_size),
        converted_from=dict(
            source=layout.name, file=osp.basename(src), sha256=_sha256(src)))
    if ref_size != src_ref_size:
        meta['dense_bias'] = dense_bias
    dataset_meta = _dataset_meta(checkpoint)
    if layout.task != 'classification' and dataset_meta:
        meta['dataset_meta'] = dataset_meta
    say(f'Writing {out}')
    num_bytes = save_checkpoint(dict(meta=meta, state_dict=tensors), out)
    return ConversionReport(
        src=src,
        source=layout.name,
        container=container,
        num_read=len(state_dict),
        variant=found,
        attn_ref_size=ref_size,
        num_mapped=len(tensors),
        dropped=dict(Counter(reason for _, reason in mapping.dropped)),
        bias=bias,
        out=out,
        num_bytes=num_bytes,
        num_params=sum(
            t.numel() for k, t in tensors.items()
            if t.is_floating_point() and not k.endswith(('.running_mean',
                                                         '.running_var'))))
