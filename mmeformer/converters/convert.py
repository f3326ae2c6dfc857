"""Converting a checkpoint from start to end: read, rename, check, write.

The check is a strict load into the target model built on the ``meta``
device: nothing is written unless it loads every tensor, and the error then
lists all problems at once.
"""
import hashlib
import os
import os.path as osp
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn

from mmeformer.models.heads import EfficientFormerClsHead
from mmeformer.models.layers import AttentionBias
from mmeformer.utils import Grid, atomic_torch_save, parse_size
from mmeformer.version import __version__
from .bias import BIAS_MODES, adapt_bias_tables, check_bias_mode
from .errors import ConversionError, describe_problems
from .keymaps import SOURCES, KeyMapping, SourceLayout, map_keys
from .keymaps.official import DENSE_PARTS, OPTIONAL_PARTS
from .layouts import detect_source, is_mmeformer_layout
from .reading import extract_state_dict, read_checkpoint
from .variants import Variant, detect_variant, parse_variant

#: Default file name of each task's converted checkpoint, in ``checkpoints/``
#: (the classifiers' are the default ``init_cfg`` checkpoints of the configs).
OUTPUT_NAMES = {
    'classification': '{name}_in1k{suffix}.pth',
    'detection': 'maskrcnn_{name}_coco{suffix}.pth',
    'segmentation': 'fpn_{name}_ade20k{suffix}.pth',
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
    try:
        return parse_size(default if value is None else value, 'attn_ref_size')
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
    if ref_size != parse_size(layout.ref_size):
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


def save_checkpoint(checkpoint: Any, path: str) -> int:
    """Save ``checkpoint`` to ``path`` all at once, or not at all.

    Args:
        checkpoint (Any): Object to save with :func:`torch.save`.
        path (str): Destination; missing folders are created.

    Returns:
        int: Size of the written file in bytes.

    Raises:
        ConversionError: If the folder cannot be created or written to.
    """
    folder = osp.dirname(osp.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise ConversionError(f'Cannot write to {folder}: {e}') from e
    try:
        return atomic_torch_save(checkpoint, path)
    except OSError as e:
        raise ConversionError(f'Cannot write {path}: {e}') from e


def build_target(variant: Variant, task: str, ref_size: Grid,
                 head: Optional[dict]) -> nn.Module:
    """The model a converted checkpoint is for, on the ``meta`` device.

    Args:
        variant (Variant): The variant.
        task (str): ``'classification'`` for the backbone with its final
            norm; ``'detection'`` or ``'segmentation'`` for the backbone of
            a dense model, with the family's official output norms.
        ref_size (tuple[int, int]): ``attn_ref_size`` of the backbone.
        head (dict, optional): Arguments of the classifier's
            :class:`EfficientFormerClsHead` but ``in_channels``; None for
            no head.

    Returns:
        nn.Module: ``backbone`` (and ``head``) without memory behind their
        tensors, named as in the classifier, detector or segmentor.
    """
    cls = variant.backbone_cls
    if task == 'classification':
        kwargs = dict(final_norm=True)
    else:
        kwargs = dict(
            out_indices=(0, 1, 2, 3), out_norm_cfg=cls.dense_out_norm_cfg)
    try:
        with torch.device('meta'):
            parts = dict(
                backbone=cls(
                    arch=variant.arch, attn_ref_size=ref_size, **kwargs))
            if head is not None:
                parts['head'] = EfficientFormerClsHead(
                    in_channels=variant.channels[-1], **head)
    except ValueError as e:
        raise ConversionError(
            f'Cannot build {variant.name} for attn_ref_size {ref_size}: {e}'
        ) from e
    return nn.ModuleDict(parts)


def bias_grids(model: nn.Module) -> Dict[str, Grid]:
    """The key grid of every attention-bias table, by state-dict name."""
    return {
        f'{name}.table': module.key_grid
        for name, module in model.named_modules()
        if isinstance(module, AttentionBias)
    }


def load_problems(model: nn.Module, mapping: KeyMapping,
                  tensors: Dict[str, torch.Tensor]) -> Dict[str, List[str]]:
    """What a strict load of ``tensors`` into ``model`` reports.

    Args:
        model (nn.Module): A model on the ``meta`` device; the tensors are
            assigned to it, not copied.
        mapping (KeyMapping): Where each tensor came from.
        tensors (dict[str, Tensor]): The tensors to load.

    Returns:
        dict[str, list[str]]: Missing keys, unexpected and mismatched
        tensors (named by their source key) and other errors.
    """
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    try:
        model.load_state_dict(tensors, strict=True, assign=True)
        return {}
    except RuntimeError as e:
        # One line per error after the first: 'Missing key(s) in
        # state_dict: "a", "b". ', 'size mismatch for a: ...'.
        lines = str(e).split('\n\t')[1:]
    problems = dict(missing=[], unexpected=[], mismatched=[], other=[])
    for line in lines:
        keys = re.findall(r'"([^"]+)"', line)
        if line.startswith('Missing key(s)'):
            problems['missing'] += keys
        elif line.startswith('Unexpected key(s)'):
            problems['unexpected'] += [
                f'{mapping.origins[k]} (as {k})' for k in keys
            ]
        elif line.startswith('size mismatch for '):
            k = line[len('size mismatch for '):].split(': ')[0]
            problems['mismatched'].append(
                f'{mapping.origins[k]} (as {k}): '
                f'{tuple(tensors[k].shape)}, expected {shapes[k]}')
        else:
            problems['other'].append(line)
    return problems


def dense_problems(mapping: KeyMapping, task: str,
                   variant: Variant) -> Dict[str, List[str]]:
    """Missing parts of a detector or segmentor, and neck inputs that do not
    fit the backbone (the parts kept as they are are not loaded here)."""
    kept = [k for k in mapping.tensors if not k.startswith('backbone.')]
    missing = [
        f'{part}* (no tensor of this part)' for part in DENSE_PARTS[task]
        if part not in OPTIONAL_PARTS and not any(
            k.startswith(part) for k in kept)
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
    return dict(missing=missing, mismatched=mismatched)


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
    check_bias_mode(dense_bias)
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
    head_cfg = dict(
        num_classes=int(head.shape[0]) if head is not None else 1000,
        distillation='head.dist_head.weight' in mapping.tensors)
    dense = layout.task != 'classification'
    model = build_target(found, layout.task, ref_size,
                         None if dense else head_cfg)
    expected = OrderedDict(
        (k, tuple(v.shape)) for k, v in model.state_dict().items())
    dst_grids = bias_grids(model)
    src_ref_size = parse_size(layout.ref_size)
    src_grids = dst_grids if src_ref_size == ref_size else bias_grids(
        build_target(found, layout.task, src_ref_size, None))
    bias = adapt_bias_tables(mapping.tensors, expected, src_grids, dst_grids,
                             dense_bias)

    loaded = OrderedDict((k, v) for k, v in mapping.tensors.items()
                         if not dense or k.startswith('backbone.'))
    problems = load_problems(model, mapping, loaded)
    kept = dense_problems(mapping, layout.task, found) if dense else {}
    problems = describe_problems([
        ('missing keys (needed by the model, not in the file)',
         problems.get('missing', []) + kept.get('missing', [])),
        ('unexpected keys (in the file, not in the model)',
         problems.get('unexpected', []) + mapping.unknown),
        ('shape mismatches',
         problems.get('mismatched', []) + kept.get('mismatched', [])),
        ('keys that would share one name', mapping.clashes),
        ('other errors', problems.get('other', [])),
    ])
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
    # Copies own their storage: torch.save writes whole storages, so a view
    # into a larger one would drag all of it along.
    tensors = OrderedDict((k, mapping.tensors[k].detach().clone(
        memory_format=torch.contiguous_format)) for k in order)
    digest = hashlib.sha256()
    with open(src, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    meta = dict(
        mmeformer_version=__version__,
        variant=found.name,
        arch=found.arch,
        task=layout.task,
        attn_ref_size=list(ref_size),
        converted_from=dict(
            source=layout.name,
            file=osp.basename(src),
            sha256=digest.hexdigest()))
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
