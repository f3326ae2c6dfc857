"""Refuse a checkpoint that does not fit the model, before anything is built.

mmengine loads ``load_from`` and the checkpoint of a test run non-strictly:
a checkpoint of another variant, or a backbone-only file given to a whole
detector, ends in hundreds of "size mismatch" and "missing keys" lines
inside the log, and the run goes on with the unfitted parts at random, e.g.
to report ``bbox_mAP 0.000`` as a result. :func:`check_checkpoint` reads the
file first and compares it, name by name and shape by shape, with the model
built on the ``meta`` device (:mod:`.meta_model`), as mmengine would load it:
``state_dict`` (or the whole file) with the ``module.`` of wrapped models
stripped. A truncated or unsafe file is refused with the reader's message.
"""
import os.path as osp
import re
from collections import OrderedDict
from typing import List, Optional

import torch
import torch.nn as nn

from mmeformer.converters import (ConversionError, detect_source,
                                  is_mmeformer_layout)
from mmeformer.converters.variants import detect_variant
from mmeformer.utils import (UnreadableCheckpointError, describe_problems,
                             read_checkpoint, state_dict_problems)
from .errors import CheckpointError

__all__ = ['check_checkpoint', 'PARTIAL_LOAD_HINT']

CONVERTER = 'tools/model_converters/efficientformer_to_mmeformer.py'

#: How to load a checkpoint that fits only in part, for the messages.
PARTIAL_LOAD_HINT = ('add --partial-load to load only the tensors that fit '
                     '(the others keep their initial values)')

#: Items listed per kind of problem; the rest are counted.
SHOWN = 3


def _model_state_dict(checkpoint: dict) -> 'OrderedDict[str, torch.Tensor]':
    """The tensors mmengine's ``load_checkpoint`` gives the model."""
    state_dict = checkpoint.get('state_dict', checkpoint)
    return OrderedDict((re.sub(r'^module\.', '', k), v)
                       for k, v in state_dict.items()
                       if isinstance(v, torch.Tensor))


def _variant_of(state_dict: dict) -> Optional[str]:
    """The EfficientFormer variant of an mmeformer state dict, if any."""
    family = 'v2' if any('.mlp.mid.' in k for k in state_dict) else 'v1'
    try:
        return detect_variant(state_dict, family).name
    except ConversionError:
        return None


def _what_it_is(path: str, state_dict: dict) -> str:
    """A line on the file's layout and how to make it loadable."""
    if is_mmeformer_layout(state_dict):
        variant = _variant_of(state_dict)
        return (f'It holds an {variant} backbone.' if variant else '')
    source = detect_source(state_dict)
    if source is None:
        return ''
    return (f'It is a checkpoint of the {source!r} layout: convert it '
            f'first, with python {CONVERTER} {path} --source {source}.')


def check_checkpoint(model: nn.Module,
                     path: Optional[str],
                     config: str,
                     partial: bool = False,
                     fix: str = 'pass a checkpoint of this config\'s model',
                     partial_hint: Optional[str] = PARTIAL_LOAD_HINT) -> None:
    """Read ``path`` and check that it fits ``model``.

    Args:
        model (nn.Module): The model, e.g. from
            :func:`~.meta_model.build_meta_model`.
        path (str, optional): The checkpoint; remote paths and None are not
            checked.
        config (str): The config file, for the message.
        partial (bool): Accept a checkpoint that fits only in part (it is
            still read, so an unreadable file is refused). Defaults to False.
        fix (str): What the user should do instead, for the message.
            Defaults to "pass a checkpoint of this config's model".
        partial_hint (str, optional): How to load only what fits, for the
            message; None for a tool that cannot. Defaults to
            :data:`PARTIAL_LOAD_HINT` (the option of train and test).

    Raises:
        CheckpointError: If the file cannot be read, or tensors of the
            model are missing from it, it holds tensors the model does not
            have, or shapes differ (unless ``partial``).
    """
    if not isinstance(path, str) or '://' in path or not osp.exists(path):
        # Missing local files are the path checks' business.
        return
    try:
        checkpoint = read_checkpoint(path)
    except UnreadableCheckpointError as e:
        raise CheckpointError(str(e)) from e
    if not isinstance(checkpoint, dict):
        raise CheckpointError(
            f'{path} holds a {type(checkpoint).__name__}, not a checkpoint '
            'dict or a state dict.')
    if partial:
        return
    state_dict = _model_state_dict(checkpoint)
    problems = state_dict_problems(model.state_dict(), state_dict)
    if not any(items for _, items in problems):
        return
    lines: List[str] = [
        f'{path} does not fit the model of {config}:',
        describe_problems(problems, SHOWN)
    ]
    what = _what_it_is(path, state_dict)
    if what:
        lines.append(what)
    lines.append(
        f'Fix: {fix}, or {partial_hint}.' if partial_hint else f'Fix: {fix}.')
    raise CheckpointError('\n'.join(lines))
