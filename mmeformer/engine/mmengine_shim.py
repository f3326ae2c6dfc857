"""The two places where the fault-tolerance hooks rely on mmengine's internals.

mmengine 0.10 offers no public way to do either, so both live here, each
guarded by a test (tests/engine/test_mmengine_shim.py) that fails if a new
mmengine release changes the behaviour relied on:

- ``Runner`` keeps the ``--resume`` request in ``_resume`` and
  ``_load_from`` and reads them in ``load_or_resume`` after the
  ``before_run`` hooks, so a hook can check and replace the checkpoint to
  resume from.
- ``CheckpointHook`` rewrites the ``last_checkpoint`` pointer in place with
  the built-in ``open`` of its module (not through its file backend), so a
  kill at that instant leaves it empty. :func:`write_pointer_atomically`
  gives that module an ``open`` that replaces the pointer atomically.
"""
import builtins
import os
import os.path as osp
from contextlib import contextmanager
from typing import Optional, Tuple

from mmengine.hooks import checkpoint_hook

from mmeformer.utils.atomic_files import atomic_output

__all__ = [
    'POINTER_FILE', 'get_resume_request', 'set_resume_checkpoint',
    'write_pointer_atomically'
]

#: mmengine's pointer to the newest checkpoint, in ``work_dir``.
POINTER_FILE = 'last_checkpoint'


def get_resume_request(runner) -> Tuple[bool, Optional[str]]:
    """Whether ``runner`` will resume, and from which file if one was given.

    Args:
        runner (Runner): The runner.

    Returns:
        tuple[bool, str | None]: The resume switch and the explicit file
        (None: the newest checkpoint of the work dir).
    """
    return bool(runner._resume), runner._load_from


def set_resume_checkpoint(runner, path: str) -> None:
    """Make ``runner`` resume from ``path`` (call it from ``before_run``).

    Args:
        runner (Runner): A runner that resumes.
        path (str): The checkpoint to resume from.
    """
    runner._load_from = path


@contextmanager
def _replace_atomically(path, mode, *args, **kwargs):
    with atomic_output(path) as tmp, builtins.open(tmp, mode, *args,
                                                   **kwargs) as f:
        yield f


def _open_pointer_atomically(file, mode='r', *args, **kwargs):
    if 'w' in mode and osp.basename(os.fspath(file)) == POINTER_FILE:
        return _replace_atomically(file, mode, *args, **kwargs)
    return builtins.open(file, mode, *args, **kwargs)


def write_pointer_atomically() -> None:
    """Make every ``CheckpointHook`` replace ``last_checkpoint`` atomically.

    Other files that module opens are opened as before. Calling it again
    changes nothing.
    """
    checkpoint_hook.open = _open_pointer_atomically
