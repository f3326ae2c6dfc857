"""Safe loading of local checkpoints under torch >= 2.6.

torch 2.6 made ``torch.load(weights_only=True)`` the default, and mmengine
0.10 does not adapt: its training checkpoints hold a ``MessageHub`` state
with :class:`~mmengine.logging.HistoryBuffer` objects and numpy arrays, so
``--resume`` and ``load_from`` fail with ``Unsupported global``.

Rather than turning the safety off (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``),
:func:`register_safe_checkpoint_loader` replaces mmengine's loader for local
paths by one that still loads with ``weights_only=True`` and additionally
allows exactly the types mmengine itself writes into a checkpoint. Weight
files from third parties hold plain tensors and load as before; a file that
needs any other Python object is refused with an error that says why.

:func:`read_checkpoint` reads any checkpoint a user names (ours, or one of
another code base to convert) the same way, and ``.safetensors`` files,
which hold no code at all; every failure is one
:class:`UnreadableCheckpointError` message.
"""
import argparse
import os.path as osp
import pickle
import zipfile
from collections import OrderedDict
from typing import (Any, Callable, Iterable, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.utils import digit_version

__all__ = [
    'UnsafeCheckpointError', 'UnreadableCheckpointError', 'load_from_local',
    'read_checkpoint', 'extract_state_dict', 'register_safe_checkpoint_loader',
    'training_state_globals', 'describe_problems', 'state_dict_problems',
    'CHECKPOINT_HINTS'
]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs code beyond plain tensors and training state."""


class UnreadableCheckpointError(ValueError):
    """A checkpoint file cannot be read; the message says why."""


#: How to get the checkpoints a run reads, by role: the ImageNet start of
#: the dense configs (``init``), the distillation ``teacher``, ``load_from``,
#: ``resume`` and the checkpoint of a ``test`` run. The tools' messages and
#: the models' (the teacher's) share them.
CHECKPOINT_HINTS = {
    'init':
    'the dense configs start from official ImageNet classifiers converted '
    'by `python tools/model_converters/efficientformer_to_mmeformer.py '
    '--source official <official .pth>`, which writes '
    'checkpoints/<model>_in1k.pth by default (the official files are '
    'linked from configs/classification/README.md). To start from random '
    'weights instead, add --cfg-options model.backbone.init_cfg=None',
    'teacher':
    "the ImageNet configs distil from DeiT's RegNetY-16GF teacher, "
    'regnety_160-a5fe301d.pth (https://dl.fbaipublicfiles.com/deit/'
    "regnety_160-a5fe301d.pth, also timm's regnety_160.deit_in1k); "
    '`python tools/model_converters/timm_teacher_to_mmeformer.py '
    'regnety_160-a5fe301d.pth` checks it and writes checkpoints/'
    'regnety_160_deit_in1k.pth. To train without a teacher, use the '
    '*_no-teacher_in1k.py configs or add --cfg-options model.teacher=None',
    'load_from':
    'load_from names a checkpoint to start from: a file written by '
    'tools/train.py (work_dirs/<config>/epoch_N.pth or iter_N.pth) or a '
    'converted one',
    'resume':
    'pass a checkpoint written by tools/train.py, or --resume alone to '
    'continue from the latest one in the work dir',
    'test':
    'pass a checkpoint written by tools/train.py (work_dirs/<config>/'
    'epoch_N.pth or iter_N.pth) or one converted by '
    'tools/model_converters/efficientformer_to_mmeformer.py',
}

#: Keys under which checkpoints nest their state dict, tried in this order:
#: mmengine / mmcv (``state_dict``), then DeiT-style training scripts such as
#: the official EfficientFormer one (``model``).
STATE_DICT_KEYS = ('state_dict', 'model')


def _history_buffer_getattr(obj: Any, name: str) -> Callable:
    """``getattr`` restricted to HistoryBuffer's public methods.

    A pickled :class:`HistoryBuffer` refers to its statistics methods through
    ``getattr(HistoryBuffer, 'mean')``. A general ``getattr`` would let a
    crafted file reach arbitrary objects, so only public methods of the
    class are served.
    """
    allowed = (obj is HistoryBuffer or isinstance(obj, HistoryBuffer))
    attr = getattr(HistoryBuffer, name, None) if allowed else None
    if attr is None or name.startswith('_') or not callable(attr):
        raise UnsafeCheckpointError(
            f'getattr({type(obj).__name__}, {name!r}) is not allowed while '
            'loading a checkpoint: only public methods of mmengine\'s '
            'HistoryBuffer are.')
    return getattr(obj, name)


def training_state_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The globals an mmengine training checkpoint contains.

    Returns:
        list: Entries for :func:`torch.serialization.safe_globals`.
    """
    multiarray = getattr(np, '_core', None) or np.core
    multiarray = multiarray.multiarray
    dtype_classes = [
        type(np.dtype(t))
        for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
                  np.float16, np.float32, np.float64)
    ]
    return [
        HistoryBuffer,
        (_history_buffer_getattr, 'builtins.getattr'),
        (_history_buffer_getattr, '__builtin__.getattr'),
        multiarray._reconstruct,
        multiarray.scalar,
        np.ndarray,
        np.dtype,
        *dtype_classes,
    ]


def load_from_local(filename: str,
                    map_location: Optional[Union[str, Callable]] = None):
    """Load a local checkpoint with ``weights_only=True``.

    Tensors, containers of them and mmengine's own training state (message
    hub buffers, numpy scalars) load; anything else is refused.

    Args:
        filename (str): Path of the checkpoint.
        map_location (str | Callable, optional): Same as
            :func:`torch.load`. Defaults to None.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        FileNotFoundError: If ``filename`` does not exist.
        UnsafeCheckpointError: If the file needs other Python objects.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    with torch.serialization.safe_globals(training_state_globals()):
        try:
            return torch.load(
                filename, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as e:
            raise UnsafeCheckpointError(
                f'Refusing to load {filename}: it holds Python objects that '
                'are neither tensors nor mmengine training state, and '
                'unpickling them could run code from the file. If you '
                'trust the file, load it yourself with '
                'torch.load(..., weights_only=False) and save its '
                f'state_dict again. Details: {e}') from e


def register_safe_checkpoint_loader() -> bool:
    """Make mmengine load local checkpoints through
    :func:`load_from_local`.

    Only done for torch >= 2.6, where ``weights_only=True`` became the
    default and broke resuming; older torch keeps mmengine's loader
    untouched. Calling it again is harmless.

    Returns:
        bool: Whether the loader is registered.
    """
    if digit_version(torch.__version__) < digit_version('2.6.0'):
        return False
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)
    return True


def _first_sentence(error: BaseException, innermost: bool = False) -> str:
    """The first sentence of ``error`` or of the deepest error in its chain
    (torch wraps the unpickler's precise complaint in a long message)."""
    while innermost and (error.__cause__ or error.__context__) is not None:
        error = error.__cause__ or error.__context__
    return str(error).split('. ')[0].strip().rstrip('.')


def _read_safetensors(path: str) -> dict:
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError as e:
        raise UnreadableCheckpointError(
            f'{path} is a safetensors file; reading it needs the '
            '`safetensors` package (pip install safetensors).') from e
    try:
        return load_file(path, device='cpu')
    except (SafetensorError, OSError, ValueError) as e:
        raise UnreadableCheckpointError(
            f'{path} is not a readable safetensors file; it is probably '
            f'truncated or corrupt ({e}).') from e


def _read_pickle(path: str) -> Any:
    try:
        # The official (DeiT-style) training script stores its arguments
        # next to the weights.
        with torch.serialization.safe_globals([argparse.Namespace]):
            return load_from_local(path, map_location='cpu')
    except UnsafeCheckpointError as e:
        reason = _first_sentence(e, innermost=True)
        if zipfile.is_zipfile(path):
            raise UnreadableCheckpointError(
                f'Refusing to read {path}: unpickling it needs Python '
                'objects other than tensors and plain containers, and '
                'loading them could run code from the file (it is read '
                'with weights_only=True). Released weights never need '
                'this: load the file yourself only if you trust it, and '
                'save its state dict again. The unpickler reported: '
                f'{reason}.') from e
        # A file in the old, non-zip format is one pickle stream; when it is
        # cut short the unpickler reads garbage opcodes, which look like
        # requests for unknown objects.
        raise UnreadableCheckpointError(
            f'Refusing to read {path}: it is in the pre-1.6 PyTorch format '
            'and either needs Python objects other than tensors (loading '
            'them could run code from the file) or is truncated or corrupt. '
            f'The unpickler reported: {reason}.') from e
    except (RuntimeError, EOFError, KeyError, ValueError, OSError,
            pickle.UnpicklingError) as e:
        raise UnreadableCheckpointError(
            f'{path} cannot be read as a PyTorch checkpoint; it is probably '
            f'truncated or corrupt ({type(e).__name__}: '
            f'{_first_sentence(e)}).') from e


def read_checkpoint(path: str) -> Any:
    """Load a local checkpoint safely onto the CPU.

    PyTorch files load as in :func:`load_from_local`, with
    :class:`argparse.Namespace` allowed too; ``.safetensors`` files with
    the ``safetensors`` package.

    Args:
        path (str): The file.

    Returns:
        Any: What the file holds.

    Raises:
        UnreadableCheckpointError: If the file is missing, unreadable,
            truncated or needs code to be unpickled.
    """
    if osp.isdir(path):
        raise UnreadableCheckpointError(
            f'{path} is a folder; name the checkpoint file in it.')
    if not osp.isfile(path):
        raise UnreadableCheckpointError(f'No checkpoint file at {path}.')
    if osp.getsize(path) == 0:
        raise UnreadableCheckpointError(f'{path} is empty.')
    if path.endswith('.safetensors'):
        return _read_safetensors(path)
    return _read_pickle(path)


def extract_state_dict(
        checkpoint: Any,
        path: str) -> Tuple['OrderedDict[str, torch.Tensor]', Optional[str]]:
    """Find the state dict in a loaded checkpoint.

    Args:
        checkpoint (Any): What :func:`read_checkpoint` returned.
        path (str): The file it came from, for messages.

    Returns:
        tuple[OrderedDict, str | None]: The tensors by name and the key the
        state dict was nested under (None for a bare state dict).

    Raises:
        UnreadableCheckpointError: If no state dict is found or it holds
            entries that are not tensors.
    """
    if not isinstance(checkpoint, dict):
        raise UnreadableCheckpointError(
            f'{path} holds a {type(checkpoint).__name__}, not a dict of '
            'tensors or a checkpoint dict.')
    container = next((key for key in STATE_DICT_KEYS if key in checkpoint),
                     None)
    state_dict = checkpoint[container] if container else checkpoint
    if not isinstance(state_dict, dict):
        raise UnreadableCheckpointError(
            f'{path}: checkpoint[{container!r}] is a '
            f'{type(state_dict).__name__}, not a state dict.')
    not_tensors = [
        f'{key}: {type(value).__name__}' for key, value in state_dict.items()
        if not isinstance(value, torch.Tensor)
    ]
    if not_tensors:
        where = f'checkpoint[{container!r}]' if container else 'the file'
        raise UnreadableCheckpointError(
            f'{path}: {where} is not a state dict; it has entries that are '
            'not tensors (a state dict may be nested under one of '
            f'{list(STATE_DICT_KEYS)}).\n' +
            describe_problems([('entries that are not tensors', not_tensors)]))
    if not state_dict:
        raise UnreadableCheckpointError(f'{path} holds no tensors.')
    return OrderedDict(state_dict), container


def describe_problems(groups: Sequence[Tuple[str, Iterable[str]]],
                      limit: int = 20) -> str:
    """Format named lists of problems with a checkpoint, one item a line.

    Args:
        groups (Sequence[tuple[str, Iterable[str]]]): ``(title, items)``
            pairs; empty groups are left out.
        limit (int): Items shown per group; the rest are counted.
            Defaults to 20.

    Returns:
        str: The formatted text, empty when there is no problem.
    """
    lines: List[str] = []
    for title, items in groups:
        items = list(items)
        if not items:
            continue
        lines.append(f'{title} ({len(items)}):')
        lines += [f'  {item}' for item in items[:limit]]
        if len(items) > limit:
            lines.append(f'  ... and {len(items) - limit} more')
    return '\n'.join(lines)


def state_dict_problems(
        expected: Mapping[str, torch.Tensor],
        given: Mapping[str, torch.Tensor]) -> List[Tuple[str, List[str]]]:
    """What a strict load of ``given`` into a model would refuse.

    BatchNorm's ``num_batches_tracked`` counters are not required: torch
    and mmengine fill them in.

    Args:
        expected (Mapping[str, Tensor]): The model's state dict (tensors may
            be on the ``meta`` device).
        given (Mapping[str, Tensor]): The tensors of a checkpoint.

    Returns:
        list[tuple[str, list[str]]]: Shape mismatches, missing keys and
        unexpected keys, as groups for :func:`describe_problems`; all empty
        when everything fits.
    """
    missing = [
        k for k in expected
        if k not in given and not k.endswith('num_batches_tracked')
    ]
    unexpected = [k for k in given if k not in expected]
    mismatched = [
        f'{k}: {tuple(given[k].shape)} in the file, '
        f'{tuple(expected[k].shape)} in the model' for k in expected
        if k in given and given[k].shape != expected[k].shape
    ]
    return [
        ('shape mismatches', mismatched),
        ('missing keys (in the model, not in the file)', missing),
        ('unexpected keys (in the file, not in the model)', unexpected),
    ]
