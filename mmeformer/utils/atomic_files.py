"""Writing files so that readers see the old content or the new, never half.

Checkpoints, their ``last_checkpoint`` pointer, converted weights and
exported models are all written the same way: to a hidden temporary name
beside the destination, flushed to disk, then renamed over the destination
with :func:`os.replace` (atomic within a file system). An interrupted or
failed write leaves no partial file, and an existing file stays intact until
the new one is complete.
"""
import os
import os.path as osp
import shutil
from contextlib import contextmanager
from typing import Any, Iterator

import torch

__all__ = [
    'TMP_SUFFIX', 'atomic_output', 'atomic_write_bytes', 'atomic_torch_save',
    'fsync_path'
]

#: Temporary names start with a dot and contain ``.tmp``: neither mmengine's
#: checkpoint pointer nor a search for ``iter_*.pth`` ever takes them for a
#: finished file.
TMP_SUFFIX = '.tmp'


def fsync_path(path: str) -> None:
    """Flush a file or a folder entry to the disk.

    Args:
        path (str): A file or a folder.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        # Some file systems cannot sync folders; the rename itself is still
        # atomic for every process that reads the folder.
        pass
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    if osp.isdir(path) and not osp.islink(path):
        shutil.rmtree(path)
    elif osp.lexists(path):
        os.remove(path)


@contextmanager
def atomic_output(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; move it to ``path`` only when
    the block succeeds.

    The temporary name keeps the extension (``.onnx``, ``.mlpackage``), as
    some writers require it. Works for files and for folders (Core ML
    packages); the folder of ``path`` must exist.

    Args:
        path (str): The destination.

    Yields:
        str: Where the block writes.

    Examples:
        >>> with atomic_output('model.onnx') as tmp:
        ...     torch.onnx.export(model, inputs, tmp)
    """
    folder, name = osp.split(osp.abspath(path))
    stem, ext = osp.splitext(name)
    tmp = osp.join(folder, f'.{stem}.{os.getpid()}{TMP_SUFFIX}{ext}')
    try:
        yield tmp
        if osp.isfile(tmp):
            fsync_path(tmp)
        if osp.isdir(path) and not osp.islink(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
        fsync_path(folder)
    finally:
        _remove(tmp)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    Args:
        path (str): Destination file; its folder must exist.
        data (bytes): Content.
    """
    with atomic_output(path) as tmp, open(tmp, 'wb') as f:
        f.write(data)


def atomic_torch_save(obj: Any, path: str) -> int:
    """:func:`torch.save` ``obj`` to ``path`` atomically.

    The data go through an open file object: ``torch.save`` names the
    archive inside after a file path, and the temporary name would make two
    saves of the same object differ byte for byte.

    Args:
        obj (Any): What to save.
        path (str): Destination file; its folder must exist.

    Returns:
        int: Size of the written file in bytes.
    """
    with atomic_output(path) as tmp, open(tmp, 'wb') as f:
        torch.save(obj, f)
    return osp.getsize(path)
