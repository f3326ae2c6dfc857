"""Checkpoints that a kill at any instant cannot leave broken or missing.

mmengine's :class:`~mmengine.hooks.CheckpointHook` writes ``iter_N.pth`` and
the ``last_checkpoint`` pointer in place, and with ``max_keep_ckpts`` it
deletes the oldest checkpoint before it writes the new one: a kill while
saving leaves a truncated file, an empty pointer, or (with
``max_keep_ckpts=1``) no checkpoint at all. :class:`AtomicCheckpointHook`
closes the three gaps through mmengine's own extension points.
"""
import fnmatch
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from mmeformer.registry import HOOKS
from mmeformer.utils.atomic_files import TMP_SUFFIX
from ..atomic_backend import ATOMIC_LOCAL
from ..mmengine_shim import POINTER_FILE, write_pointer_atomically

__all__ = ['AtomicCheckpointHook']


def _temporary_names(filename_pattern: str) -> str:
    """The pattern of :func:`atomic_output`'s temporary names for files
    matching ``filename_pattern``."""
    stem, ext = osp.splitext(filename_pattern)
    return f'.{stem}.*{TMP_SUFFIX}{ext}'


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """Save checkpoints so that a killed run always resumes.

    A drop-in replacement of :class:`mmengine.hooks.CheckpointHook`: the
    model-zoo configs enable it with
    ``default_hooks.checkpoint.type = 'mmeformer.AtomicCheckpointHook'``.
    On a local disk:

    - each checkpoint is written through the ``atomic_local`` file backend
      (:class:`~mmeformer.engine.atomic_backend.AtomicLocalBackend`, given
      as mmengine's ``backend_args``), and the ``last_checkpoint`` pointer
      is replaced atomically as well (:mod:`mmeformer.engine.mmengine_shim`);
    - with ``max_keep_ckpts``, an outdated checkpoint is deleted only once
      the new checkpoint and the pointer are complete;
    - leftovers of writes that a kill interrupted are removed when training
      starts again.

    With ``backend_args`` or ``file_client_args`` given, or an ``out_dir``
    on remote storage, files are written by that backend as before (object
    stores replace objects atomically by themselves). ``best_*``
    checkpoints are never read to resume.

    Args:
        interval (int): The saving period, in epochs or iterations.
            Defaults to -1: only the last one (``save_last``).
        max_keep_ckpts (int): How many of the newest checkpoints to keep;
            -1 keeps all. Defaults to -1.
        out_dir (str, optional): See
            :class:`~mmengine.hooks.CheckpointHook`. Defaults to None.
        backend_args (dict, optional): See
            :class:`~mmengine.hooks.CheckpointHook`. Defaults to None: the
            ``atomic_local`` backend for local folders.
        **kwargs: Other arguments of
            :class:`~mmengine.hooks.CheckpointHook`.
    """

    def __init__(self,
                 interval: int = -1,
                 *,
                 max_keep_ckpts: int = -1,
                 out_dir=None,
                 backend_args=None,
                 **kwargs) -> None:
        self.writes_atomically = ('://' not in str(out_dir or '')
                                  and backend_args is None
                                  and kwargs.get('file_client_args') is None)
        if self.writes_atomically:
            backend_args = dict(backend=ATOMIC_LOCAL)
        self.keep_latest = max_keep_ckpts
        # mmengine deletes the oldest checkpoint before it writes the new
        # one: it is told to keep one more, and _delete_outdated deletes
        # that one once the new checkpoint is complete.
        if max_keep_ckpts > 0:
            max_keep_ckpts += 1
        super().__init__(
            interval=interval,
            max_keep_ckpts=max_keep_ckpts,
            out_dir=out_dir,
            backend_args=backend_args,
            **kwargs)

    def before_train(self, runner) -> None:
        """Resolve the output folder and remove leftovers of killed writes.

        Args:
            runner (Runner): The runner of the training process.
        """
        super().before_train(runner)
        if not self.writes_atomically:
            return
        write_pointer_atomically()
        if not is_main_process():
            return
        patterns = [
            _temporary_names(self.filename_tmpl.format('*')),
            _temporary_names('best_*' + self.filename_tmpl.format('*')),
            _temporary_names(POINTER_FILE)
        ]
        for folder in {self.out_dir, runner.work_dir}:
            for name in os.listdir(folder) if osp.isdir(folder) else ():
                if any(fnmatch.fnmatch(name, p) for p in patterns):
                    os.remove(osp.join(folder, name))

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        """Save as mmengine does, then delete outdated checkpoints."""
        saved_before = self.last_ckpt
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
        self._delete_outdated(saved_before)

    def after_train_epoch(self, runner) -> None:
        """Save as mmengine does, then delete outdated checkpoints.

        Args:
            runner (Runner): The runner of the training process.
        """
        saved_before = self.last_ckpt
        super().after_train_epoch(runner)
        self._delete_outdated(saved_before)

    def after_val_epoch(self, runner, metrics) -> None:
        """Save the best checkpoint as mmengine does, then delete outdated
        checkpoints.

        Args:
            runner (Runner): The runner of the training process.
            metrics (dict): Evaluation results of all metrics.
        """
        saved_before = self.last_ckpt
        super().after_val_epoch(runner, metrics)
        self._delete_outdated(saved_before)

    def _delete_outdated(self, saved_before) -> None:
        """Delete all but the newest ``keep_latest`` checkpoints, if a
        checkpoint was saved since ``last_ckpt`` was ``saved_before``."""
        if (self.keep_latest <= 0 or self.last_ckpt == saved_before
                or not is_main_process()):
            return
        for step in list(self.keep_ckpt_ids)[:-self.keep_latest]:
            path = self.file_backend.join_path(self.out_dir,
                                               self.filename_tmpl.format(step))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                # Checkpoints saved by DeepSpeed are folders.
                self.file_backend.rmtree(path)
