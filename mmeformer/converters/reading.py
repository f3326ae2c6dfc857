"""Reading checkpoints of other code bases without running their code.

PyTorch files are unpickled with ``weights_only=True``, so a file that needs
any Python object beyond tensors and plain containers is refused instead of
executed; the one extra type allowed is :class:`argparse.Namespace`, which
the official (DeiT-style) training script stores next to the weights.
``.safetensors`` files hold no code at all.
"""
import argparse
import os.path as osp
import pickle
import zipfile
from collections import OrderedDict
from typing import Any, Optional, Tuple

import torch

from mmeformer.utils import UnsafeCheckpointError, load_from_local
from .errors import ConversionError, describe_problems

#: Keys under which checkpoints nest their state dict, tried in this order:
#: mmengine / mmcv (``state_dict``), then DeiT-style training scripts such as
#: the official EfficientFormer one (``model``).
STATE_DICT_KEYS = ('state_dict', 'model')


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
        raise ConversionError(
            f'{path} is a safetensors file; reading it needs the '
            '`safetensors` package (pip install safetensors).') from e
    try:
        return load_file(path, device='cpu')
    except (SafetensorError, OSError, ValueError) as e:
        raise ConversionError(
            f'{path} is not a readable safetensors file; it is probably '
            f'truncated or corrupt ({e}).') from e


def _read_pickle(path: str) -> Any:
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return load_from_local(path, map_location='cpu')
    except UnsafeCheckpointError as e:
        reason = _first_sentence(e, innermost=True)
        if zipfile.is_zipfile(path):
            raise ConversionError(
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
        raise ConversionError(
            f'Refusing to read {path}: it is in the pre-1.6 PyTorch format '
            'and either needs Python objects other than tensors (loading '
            'them could run code from the file) or is truncated or corrupt. '
            f'The unpickler reported: {reason}.') from e
    except (RuntimeError, EOFError, KeyError, ValueError, OSError,
            pickle.UnpicklingError) as e:
        raise ConversionError(
            f'{path} cannot be read as a PyTorch checkpoint; it is probably '
            f'truncated or corrupt ({type(e).__name__}: '
            f'{_first_sentence(e)}).') from e


def read_checkpoint(path: str) -> Any:
    """Load a PyTorch or ``.safetensors`` checkpoint safely onto the CPU.

    Args:
        path (str): The file.

    Returns:
        Any: What the file holds (a dict for every supported layout).

    Raises:
        ConversionError: If the file is missing, unreadable, truncated or
            needs code to be unpickled.
    """
    if osp.isdir(path):
        raise ConversionError(
            f'{path} is a folder; name the checkpoint file in it.')
    if not osp.isfile(path):
        raise ConversionError(f'No checkpoint file at {path}.')
    if osp.getsize(path) == 0:
        raise ConversionError(f'{path} is empty.')
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
        ConversionError: If no state dict is found or it holds entries that
            are not tensors.
    """
    if not isinstance(checkpoint, dict):
        raise ConversionError(
            f'{path} holds a {type(checkpoint).__name__}, not a dict of '
            'tensors or a checkpoint dict.')
    container = next((key for key in STATE_DICT_KEYS if key in checkpoint),
                     None)
    state_dict = checkpoint[container] if container else checkpoint
    if not isinstance(state_dict, dict):
        raise ConversionError(
            f'{path}: checkpoint[{container!r}] is a '
            f'{type(state_dict).__name__}, not a state dict.')
    not_tensors = [
        f'{key}: {type(value).__name__}' for key, value in state_dict.items()
        if not isinstance(value, torch.Tensor)
    ]
    if not_tensors:
        where = f'checkpoint[{container!r}]' if container else 'the file'
        raise ConversionError(
            f'{path}: {where} is not a state dict; it has entries that are '
            'not tensors (a state dict may be nested under one of '
            f'{list(STATE_DICT_KEYS)}).\n' +
            describe_problems([('entries that are not tensors', not_tensors)]))
    if not state_dict:
        raise ConversionError(f'{path} holds no tensors.')
    return OrderedDict(state_dict), container
