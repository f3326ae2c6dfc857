"""Converting a checkpoint: read, rename, check (a load into the target
model built on the ``meta`` device) and write, or write nothing and list
every problem at once."""
import hashlib
import os
import os.path as osp
import re
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn

from mmeformer.models.heads import EfficientFormerClsHead
from mmeformer.models.layers import AttentionBias
from mmeformer.utils import (Grid, UnreadableCheckpointError,
                             atomic_torch_save, describe_problems,
                             extract_state_dict, parse_size, read_checkpoint)
from mmeformer.version import __version__
from .bias import BIAS_MODES, adapt_bias_tables, check_bias_mode
from .errors import ConversionError
from .keymap import KeyMapping, SourceLayout, map_keys
from .layouts import (DENSE_PARTS, OPTIONAL_PARTS, SOURCES, detect_source,
                      is_mmeformer_layout)
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
    """What a conversion read (``src``, its ``source`` layout, the
    ``container`` key of its state dict, the tensors), found (``variant``),
    did (bias tables at ``attn_ref_size``, tensors mapped and ``dropped`` by
    reason, ``bias`` changes) and wrote (``out``, bytes, parameters)."""

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


def _output_path(out: Optional[str], layout: SourceLayout, variant: Variant,
                 ref_size: Grid, bias_mode: str) -> str:
    """``out``, or the :data:`OUTPUT_NAMES` file (``_ref<size>_<bias mode>``
    added off the source's reference size) in the folder ``out`` or in
    ``checkpoints/``; a missing folder of ``out`` is refused."""
    suffix = ''
    if ref_size != parse_size(layout.ref_size):
        h, w = ref_size
        suffix = f'_ref{h if h == w else f"{h}x{w}"}_{bias_mode}'
    name = OUTPUT_NAMES[layout.task].format(name=variant.name, suffix=suffix)
    if out is None or osp.isdir(out):
        return osp.join(out or 'checkpoints', name)
    folder = blocker = osp.dirname(osp.abspath(out))
    while not osp.exists(blocker):
        blocker = osp.dirname(blocker)
    if blocker != folder and osp.isdir(blocker):
        raise ConversionError(
            f'Cannot write {out}: the folder {folder} does not exist. '
            'Create it first (mkdir -p) or choose another --out.')
    if not osp.isdir(blocker):
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


def _map_source_keys(src: str, state_dict: dict,
                     layout: SourceLayout) -> KeyMapping:
    """Rename ``state_dict``, refusing files in mmeformer's layout already
    and files whose names are mostly not the layout's."""
    if is_mmeformer_layout(state_dict):
        raise ConversionError(
            f'{src} is already in mmeformer\'s layout (backbone.stem.*, '
            'backbone.stages.*): it needs no conversion. Use it as it is, '
            'as load_from, the checkpoint of tools/test.py or '
            'init_cfg.checkpoint.')
    mapping = map_keys(state_dict, layout)
    if len(mapping.unknown) >= len(mapping.tensors):
        raise ConversionError(
            f'{len(mapping.unknown)} of the {len(state_dict)} tensors of '
            f'{src} have no name of the {layout.name!r} layout. '
            f'{_wrong_layout(state_dict, layout, mapping)}')
    return mapping


def _wrong_layout(state_dict: dict, layout: SourceLayout,
                  mapping: KeyMapping) -> str:
    """The hint that ``--source`` is wrong, and the unknown keys."""
    hint = (f'Check --source: the file does not look like a '
            f'{layout.description}.')
    guessed = detect_source(state_dict)
    if guessed is not None and guessed != layout.name:
        hint += f' Its names are those of --source {guessed}.'
    return hint + '\n' + describe_problems(
        [('unexpected keys', mapping.unknown)], 10)


def _build_target(variant: Variant, task: str, ref_size: Grid,
                  head: Optional[dict]) -> nn.Module:
    """The backbone (and ``head``, if given) of ``task``, on ``meta``."""
    cls = variant.backbone_cls
    kwargs = dict(final_norm=True) if task == 'classification' else dict(
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


def _bias_grids(model: nn.Module) -> Dict[str, Grid]:
    """The key grid of every attention-bias table, by state-dict name."""
    return {
        f'{name}.table': module.key_grid
        for name, module in model.named_modules()
        if isinstance(module, AttentionBias)
    }


def _problems(model: nn.Module, mapping: KeyMapping, task: str,
              variant: Variant) -> str:
    """What a strict load into ``model`` reports, tensors named by source
    key too, and the missing parts and misfit neck inputs of a detector or
    segmentor (checked, not loaded)."""
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = defaultdict(list)
    loaded = {
        k: v
        for k, v in mapping.tensors.items()
        if task == 'classification' or k.startswith('backbone.')
    }
    try:
        model.load_state_dict(loaded, strict=True, assign=True)
    except RuntimeError as e:
        # One line per error after the first: 'Missing key(s) in
        # state_dict: "a", "b". ', 'size mismatch for a: ...'.
        for line in str(e).split('\n\t')[1:]:
            keys = re.findall(r'"([^"]+)"', line)
            if line.startswith('Missing key(s)'):
                found['missing'] += keys
            elif line.startswith('Unexpected key(s)'):
                found['unexpected'] += [
                    f'{mapping.origins[k]} (as {k})' for k in keys
                ]
            elif line.startswith('size mismatch for '):
                k = line[len('size mismatch for '):].split(': ')[0]
                found['mismatched'].append(
                    f'{mapping.origins[k]} (as {k}): '
                    f'{tuple(mapping.tensors[k].shape)}, expected {shapes[k]}')
            else:
                found['other'].append(line)
    if task != 'classification':
        found['missing'] += [
            f'{part}* (no tensor of this part)' for part in DENSE_PARTS[task]
            if part not in OPTIONAL_PARTS and not any(
                k.startswith(part) for k in mapping.tensors)
        ]
        for i, channels in enumerate(variant.channels):
            name = f'neck.lateral_convs.{i}.conv.weight'
            weight = mapping.tensors.get(name)
            if weight is not None and weight.dim() > 1 and \
                    weight.shape[1] != channels:
                found['mismatched'].append(
                    f'{name}: {tuple(weight.shape)} takes {weight.shape[1]} '
                    f'input channels, the backbone gives {channels}')
    return describe_problems([
        ('missing keys (needed by the model, not in the file)',
         found['missing']),
        ('unexpected keys (in the file, not in the model)',
         found['unexpected'] + mapping.unknown),
        ('shape mismatches', found['mismatched']),
        ('keys that would share one name', mapping.clashes),
        ('other errors', found['other']),
    ])


def _own_storage(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor``, copied unless it fills its whole storage: torch.save
    writes whole storages, so a view would drag all of it along."""
    tensor = tensor.detach()
    if tensor.is_contiguous() and \
            tensor.untyped_storage().nbytes() == tensor.nbytes:
        return tensor
    return tensor.clone(memory_format=torch.contiguous_format)


def _meta(checkpoint: dict, src: str, layout: SourceLayout, variant: Variant,
          ref_size: Grid, dense_bias: str) -> dict:
    """The converted file's ``meta``: its origin and purpose, and the class
    names (and palette) of a detector or segmentor file."""
    digest = hashlib.sha256()
    with open(src, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    meta = dict(
        mmeformer_version=__version__,
        variant=variant.name,
        arch=variant.arch,
        task=layout.task,
        attn_ref_size=list(ref_size),
        converted_from=dict(
            source=layout.name,
            file=osp.basename(src),
            sha256=digest.hexdigest()))
    if ref_size != parse_size(layout.ref_size):
        meta['dense_bias'] = dense_bias
    old = checkpoint.get('meta')
    if layout.task != 'classification' and isinstance(old, dict):
        dataset_meta = old.get('dataset_meta')
        if not isinstance(dataset_meta, dict):
            dataset_meta = {
                name.lower(): old[name]
                for name in ('CLASSES', 'PALETTE') if old.get(name) is not None
            }
        if dataset_meta:
            meta['dataset_meta'] = dataset_meta
    return meta


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
            :data:`mmeformer.converters.SOURCES`.
        out (str, optional): Output file, or an existing folder to write
            the default file name into; its folder must exist. Defaults to
            ``checkpoints/<file of OUTPUT_NAMES>``, whose folder is created.
        variant (str, optional): The variant the file must hold, e.g.
            ``'l1'``; detected from the tensors when None. Defaults to None.
        attn_ref_size (int | str | Sequence[int], optional): Reference input
            size of the output's attention biases, e.g. 800 to start a
            detector from a classifier. Defaults to the source's own.
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
    src_ref_size = parse_size(layout.ref_size)
    try:
        ref_size = parse_size(
            src_ref_size if attn_ref_size is None else attn_ref_size,
            'attn_ref_size')
    except ValueError as e:
        raise ConversionError(str(e)) from e

    say(f'Reading {src} as a {layout.description}')
    try:
        checkpoint = read_checkpoint(src)
        state_dict, container = extract_state_dict(checkpoint, src)
    except UnreadableCheckpointError as e:
        raise ConversionError(str(e)) from e
    mapping = _map_source_keys(src, state_dict, layout)
    try:
        found = detect_variant(mapping.tensors, mapping.family, named)
    except ConversionError as e:
        if mapping.unknown:
            raise ConversionError(
                f'{e}\n{_wrong_layout(state_dict, layout, mapping)}') from e
        raise
    say(f'{"Checked" if named else "Detected"} variant {found.name}')

    dense = layout.task != 'classification'
    head = mapping.tensors.get('head.head.weight')
    model = _build_target(
        found, layout.task, ref_size, None if dense else dict(
            num_classes=int(head.shape[0]) if head is not None else 1000,
            distillation='head.dist_head.weight' in mapping.tensors))
    expected = OrderedDict(
        (k, tuple(v.shape)) for k, v in model.state_dict().items())
    dst_grids = _bias_grids(model)
    src_grids = dst_grids if src_ref_size == ref_size else _bias_grids(
        _build_target(found, layout.task, src_ref_size, None))
    bias = adapt_bias_tables(mapping.tensors, expected, src_grids, dst_grids,
                             dense_bias)
    problems = _problems(model, mapping, layout.task, found)
    if problems:
        raise ConversionError(
            f'{src} cannot be converted to {found.name} '
            f'({layout.task}): nothing was written.\n{problems}')

    out = _output_path(out, layout, found, ref_size, dense_bias)
    if osp.exists(out) and osp.samefile(out, src):
        raise ConversionError(
            f'The output {out} is the input file; choose another output.')
    # Backbone and head in model order, then the kept detector / segmentor
    # parts in file order.
    order = list(expected) + [k for k in mapping.tensors if k not in expected]
    tensors = OrderedDict((k, _own_storage(mapping.tensors[k])) for k in order)
    meta = _meta(checkpoint, src, layout, found, ref_size, dense_bias)
    say(f'Writing {out}')
    num_bytes = save_checkpoint(dict(meta=meta, state_dict=tensors), out)
    num_params = sum(
        t.numel() for k, t in tensors.items()
        if t.is_floating_point() and not k.endswith(('.running_mean',
                                                     '.running_var')))
    dropped = Counter(reason for _, reason in mapping.dropped)
    return ConversionReport(src, layout.name, container,
                            len(state_dict), found, ref_size, len(tensors),
                            dict(dropped), bias, out, num_bytes, num_params)
