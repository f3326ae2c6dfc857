"""A local file backend for mmengine whose writes replace files atomically."""
from mmengine.fileio import LocalBackend, register_backend

from mmeformer.utils.atomic_files import atomic_output

__all__ = ['ATOMIC_LOCAL', 'AtomicLocalBackend']

#: The backend's name in ``backend_args``.
ATOMIC_LOCAL = 'atomic_local'


@register_backend(ATOMIC_LOCAL)
class AtomicLocalBackend(LocalBackend):
    """Local files that readers see old or new, never in part.

    Each write goes to a temporary name and is renamed into place
    (:func:`mmeformer.utils.atomic_output`). Select it with
    ``backend_args=dict(backend='atomic_local')`` wherever mmengine takes
    ``backend_args``, e.g. in :class:`~mmengine.hooks.CheckpointHook`.
    """

    def put(self, obj: bytes, filepath) -> None:
        """Write bytes to ``filepath`` atomically.

        Args:
            obj (bytes): Data to be written.
            filepath (str or Path): Path to write data.
        """
        with atomic_output(str(filepath)) as tmp:
            super().put(obj, tmp)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically.

        Args:
            obj (str): Text to be written.
            filepath (str or Path): Path to write data.
            encoding (str): The encoding format. Defaults to 'utf-8'.
        """
        self.put(obj.encode(encoding), filepath)
