"""Writing a converted checkpoint atomically and reproducibly."""
import os
import os.path as osp
import tempfile
from typing import Any

import torch

from .errors import ConversionError


def save_checkpoint(checkpoint: Any, path: str) -> int:
    """Save ``checkpoint`` to ``path`` all at once, or not at all.

    The file is written to a temporary file in the target folder, flushed to
    disk and then renamed over ``path`` (:func:`os.replace` is atomic within a
    file system), so an interrupted or failed save never leaves a partial
    file, and an existing file stays intact until the new one is complete.
    The data go through an open file object: ``torch.save`` names the
    archive inside after a file path, and a random temporary name would make
    two conversions of the same input differ byte for byte.

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
        fd, tmp_path = tempfile.mkstemp(
            prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    except OSError as e:
        raise ConversionError(f'Cannot write to {folder}: {e}') from e
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file readable by its owner only; give the
        # result the permissions of any other new file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except BaseException as e:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        if isinstance(e, OSError):
            raise ConversionError(f'Cannot write {path}: {e}') from e
        raise
    return osp.getsize(path)
