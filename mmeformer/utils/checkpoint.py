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
"""
import os.path as osp
import pickle
from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.utils import digit_version

__all__ = [
    'UnsafeCheckpointError', 'load_from_local',
    'register_safe_checkpoint_loader', 'training_state_globals'
]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs code beyond plain tensors and training state."""


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
