"""The state file of a search: its settings and its progress, written after
every step so that a killed search continues where it stopped."""
import json
import os.path as osp
from typing import Optional

from mmeformer.utils import atomic_write_bytes

__all__ = ['SearchStateError', 'read_state', 'write_state']


class SearchStateError(ValueError):
    """A search state file that does not belong to this search."""


def _plain(value):
    """``value`` as JSON reads it back (tuples as lists...)."""
    return json.loads(json.dumps(value))


def read_state(state_file: Optional[str], settings: dict) -> Optional[dict]:
    """The state in ``state_file``, if there is one, of a search with
    ``settings``.

    Args:
        state_file (str, optional): The file; None for none.
        settings (dict): What identifies the search (JSON-serialisable).

    Returns:
        dict | None: The state (``settings`` and what the search stored),
        or None without a file.

    Raises:
        SearchStateError: If the file is no search state, or one of a
            search with other settings (naming them).
    """
    if state_file is None or not osp.isfile(state_file):
        return None
    try:
        with open(state_file) as f:
            state = json.load(f)
        stored = state['settings']
        if not isinstance(stored, dict):
            raise TypeError('settings is not a dict')
    except (ValueError, KeyError, TypeError) as e:
        raise SearchStateError(
            f'{state_file} is not a search state ({e}); remove it '
            'or use another --work-dir') from None
    settings = _plain(settings)
    if stored != settings:
        changed = sorted(
            key for key in set(stored) | set(settings)
            if stored.get(key) != settings.get(key))
        raise SearchStateError(
            f'{state_file} holds a search with other settings '
            f'({", ".join(changed)}); use another --work-dir, or the '
            'same settings to continue it')
    return state


def write_state(state_file: Optional[str], settings: dict, **content) -> None:
    """Write ``settings`` and ``content`` to ``state_file`` atomically.

    Args:
        state_file (str, optional): The file; None writes nothing.
        settings (dict): What identifies the search.
        **content: The progress (JSON-serialisable).
    """
    if state_file is None:
        return
    state = dict(settings=settings, **content)
    atomic_write_bytes(state_file, json.dumps(state, indent=1).encode())
