"""A checkpoint hook whose files survive a kill at any instant.

mmengine's :class:`~mmengine.hooks.CheckpointHook` has three weak spots
when the process dies (SIGKILL, out-of-memory, a pre-empted node):

1. ``iter_N.pth`` is written in place, so a kill mid-write leaves a
   truncated file under the final name.
2. The ``last_checkpoint`` pointer is rewritten in place: a kill can leave
   it empty, and ``--resume`` then fails on a path of ``''``.
3. With ``max_keep_ckpts`` the oldest checkpoint is deleted *before* the new
   one is written; a kill in between leaves the pointer naming a file that
   no longer exists.

:class:`AtomicCheckpointHook` writes every file to a temporary name, flushes
it to disk and renames it into place with :func:`os.replace` (atomic on
POSIX), updates the pointer the same way, and only then deletes outdated
checkpoints. When a run resumes, the pointed-to checkpoint is checked
before mmengine loads it: a missing or unreadable pointer or checkpoint
falls back to the newest complete checkpoint in the folder with a warning,
and if none exists resuming stops with an error that says what was found.

It also stores the random number generator states of every rank in the
checkpoint and restores them when training resumes, so a resumed run draws
the same RoI samples and augmentations as an uninterrupted one.
"""
import os
import os.path as osp
import random
import re
import zipfile
from typing import List, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import (all_gather_object, get_rank, get_world_size,
                           is_main_process)
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook

from mmeformer.registry import HOOKS

__all__ = [
    'AtomicCheckpointHook', 'atomic_write', 'check_checkpoint',
    'get_rng_state', 'set_rng_state'
]

#: Name of mmengine's pointer to the newest checkpoint, in ``work_dir``.
POINTER_FILE = 'last_checkpoint'
# Temporary files start with a dot and end in `.tmp`: neither mmengine's
# pointer nor the fallback search below ever takes them for a checkpoint.
_TMP_SUFFIX = '.tmp'


def _fsync_path(path: str) -> None:
    """Flush a file or a folder entry to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        # Some file systems cannot sync folders; the rename itself is
        # still atomic for every process that reads the folder.
        pass
    finally:
        os.close(fd)


def _commit(tmp_path: str, path: str) -> None:
    """Move a fully written temporary file to its final name."""
    _fsync_path(tmp_path)
    os.replace(tmp_path, path)
    _fsync_path(osp.dirname(osp.abspath(path)))


def _tmp_name(filename: str) -> str:
    return f'.{filename}{_TMP_SUFFIX}'


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see old or new, never half.

    Args:
        path (str): Destination file.
        data (bytes): Content.
    """
    tmp_path = osp.join(osp.dirname(path), _tmp_name(osp.basename(path)))
    with open(tmp_path, 'wb') as f:
        f.write(data)
    _commit(tmp_path, path)


def check_checkpoint(path: str) -> Optional[str]:
    """Why the checkpoint at ``path`` cannot be resumed from, if it cannot.

    torch (>= 1.6) saves zip archives whose central directory is written
    last, so a truncated file fails to open as an archive. Reading the
    directory costs milliseconds, unlike loading the tensors.

    Args:
        path (str): A local checkpoint file.

    Returns:
        str or None: The reason, or None if the file looks complete.
    """
    if not osp.isfile(path):
        return 'missing'
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        return f'unreadable ({e})'
    if not any(name.endswith('data.pkl') for name in names):
        return 'not a torch checkpoint (no data.pkl)'
    return None


def get_rng_state() -> dict:
    """The random states of Python, numpy and torch of this process.

    The numpy key is stored as an int64 tensor: mmeformer's safe checkpoint
    loader allows tensors but not arbitrary numpy dtypes.

    Returns:
        dict: States for :func:`set_rng_state`.
    """
    np_state = np.random.get_state(legacy=False)
    state = dict(
        python=random.getstate(),
        numpy=dict(
            bit_generator=np_state['bit_generator'],
            key=torch.from_numpy(np_state['state']['key'].astype(np.int64)),
            pos=int(np_state['state']['pos']),
            has_gauss=int(np_state['has_gauss']),
            gauss=float(np_state['gauss'])),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    """Restore states from :func:`get_rng_state`.

    Args:
        state (dict): The saved states.
    """
    random.setstate(state['python'])
    np_state = state['numpy']
    np.random.set_state(
        dict(
            bit_generator=np_state['bit_generator'],
            state=dict(
                key=np_state['key'].numpy().astype(np.uint32),
                pos=np_state['pos']),
            has_gauss=np_state['has_gauss'],
            gauss=np_state['gauss']))
    torch.set_rng_state(state['torch'].cpu())
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['cuda'].cpu())


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """Save checkpoints so that a killed run always resumes.

    A drop-in replacement of :class:`mmengine.hooks.CheckpointHook`; enable
    it in a config with::

        default_hooks = dict(
            checkpoint=dict(type='mmeformer.AtomicCheckpointHook', ...))

    Checkpoints and the ``last_checkpoint`` pointer on local disks are
    written atomically; other storage backends write as before (object
    stores replace objects atomically by themselves). ``best_*``
    checkpoints are still written by mmengine's code; resuming never reads
    them.

    Args:
        save_rng_state (bool): Store the random states of all ranks in each
            checkpoint and restore them on resume, so that a resumed run
            repeats the random draws of an uninterrupted one. It is exact
            when the data pipeline runs in worker processes
            (``num_workers > 0``): with ``num_workers=0`` the pipeline draws
            from the main process while mmengine skips the data already
            seen. Defaults to True.
        **kwargs: Arguments of :class:`~mmengine.hooks.CheckpointHook`.
    """

    def __init__(self, *args, save_rng_state: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.save_rng_state = save_rng_state
        self._rng_states: Optional[List[dict]] = None
        self._resumed_rng: Optional[Tuple[int, dict]] = None

    # Resuming -----------------------------------------------------------

    def _checkpoint_dir(self, runner) -> str:
        """Where checkpoints go, as :meth:`before_train` will resolve it."""
        if self.out_dir is None or self.out_dir == runner.work_dir:
            return runner.work_dir
        return osp.join(self.out_dir,
                        osp.basename(runner.work_dir.rstrip(osp.sep)))

    def _find_complete_checkpoints(self, folders: List[str]) -> List[str]:
        """Complete checkpoints in ``folders``, newest step first."""
        pieces = re.split(r'\{[^{}]*\}', self.filename_tmpl)
        pattern = re.compile('^' + r'(\d+)'.join(map(re.escape, pieces)) + '$')
        found = {}
        for folder in folders:
            if not osp.isdir(folder):
                continue
            for name in os.listdir(folder):
                match = pattern.match(name)
                path = osp.join(folder, name)
                if match and check_checkpoint(path) is None:
                    found[osp.abspath(path)] = int(match.group(1))
        return sorted(found, key=found.get, reverse=True)

    def _choose_resume_checkpoint(self, runner) -> Optional[str]:
        """The checkpoint a ``--resume`` run should load, or None.

        Raises:
            RuntimeError: When resuming cannot work, with the reason.
        """
        explicit = runner._load_from
        if explicit is not None:
            if '://' in str(explicit):
                return explicit
            reason = check_checkpoint(explicit)
            if reason is not None:
                raise RuntimeError(
                    f'Cannot resume from {explicit}: the file is {reason}. '
                    'Pass another checkpoint to --resume, or --resume '
                    'without a file to take the newest complete one in '
                    'the work_dir.')
            return explicit

        pointer = osp.join(runner.work_dir, POINTER_FILE)
        folders = [self._checkpoint_dir(runner)]
        problem = None
        if osp.isfile(pointer):
            with open(pointer, 'rb') as f:
                raw = f.read()
            try:
                target = raw.decode('utf-8').strip()
            except UnicodeDecodeError:
                target = ''
            if '://' in target:
                # Remote storage: mmengine reads it as before.
                return target
            if target:
                problem = check_checkpoint(target)
                if problem is None:
                    return target
                folders.append(osp.dirname(target))
                problem = f'{pointer} names {target}, which is {problem}'
            else:
                problem = f'{pointer} is empty or unreadable'

        candidates = self._find_complete_checkpoints(folders)
        if candidates:
            if problem is not None:
                runner.logger.warning(
                    f'{problem}; resuming from the newest complete '
                    f'checkpoint instead: {candidates[0]}')
            else:
                runner.logger.info(
                    f'No {POINTER_FILE} in {runner.work_dir}; resuming '
                    f'from the newest complete checkpoint {candidates[0]}')
            return candidates[0]
        if problem is not None:
            raise RuntimeError(
                f'Cannot resume: {problem}, and no other complete '
                f'checkpoint matching {self.filename_tmpl!r} is in '
                f'{", ".join(folders)}. Delete {pointer} to train from '
                'scratch, or pass a checkpoint to --resume.')
        # Nothing saved yet: mmengine starts from scratch, as it does
        # without this hook.
        return None

    def before_run(self, runner) -> None:
        """Check what ``--resume`` would load before mmengine loads it.

        The runner calls ``before_run`` just before it loads or resumes.
        The validated path is handed to the runner as an explicit resume
        file (mmengine has no public setter for it), so every rank resumes
        from the same checkpoint even if the pointer changes meanwhile.

        Args:
            runner (Runner): The runner of the training process.
        """
        if not runner._resume:
            return
        chosen = self._choose_resume_checkpoint(runner)
        if chosen is not None:
            runner._load_from = chosen

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep this rank's saved random state until training restarts.

        It cannot be applied now: mmengine then replays the data loader up
        to the resumed iteration, which would consume random numbers.

        Args:
            runner (Runner): The runner of the training process.
            checkpoint (dict): The loaded checkpoint.
        """
        states = checkpoint.get('rng_states')
        if not self.save_rng_state or states is None:
            return
        if len(states) != get_world_size():
            runner.logger.warning(
                f'The checkpoint holds random states of {len(states)} '
                f'processes, this run has {get_world_size()}; random draws '
                'will differ from the interrupted run.')
            return
        self._resumed_rng = (checkpoint['meta']['iter'], states[get_rank()])

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        """Restore the random state on the first iteration after resuming.

        Args:
            runner (Runner): The runner of the training process.
            batch_idx (int): The index of the current batch.
            data_batch (dict or tuple or list, optional): Data from the
                dataloader.
        """
        if self._resumed_rng is None:
            return
        resumed_iter, state = self._resumed_rng
        self._resumed_rng = None
        # Only for training resumed from that checkpoint, not for a
        # `load_from` fine-tuning that starts at iteration 0.
        if runner.iter == resumed_iter:
            set_rng_state(state)

    # Saving -------------------------------------------------------------

    def before_train(self, runner) -> None:
        """Resolve the output folder and drop leftovers of killed writes.

        Args:
            runner (Runner): The runner of the training process.
        """
        super().before_train(runner)
        self._local = isinstance(self.file_backend, LocalBackend)
        if not (self._local and is_main_process()):
            return
        for folder in {self.out_dir, runner.work_dir}:
            if not osp.isdir(folder):
                continue
            for name in os.listdir(folder):
                if name.startswith('.') and name.endswith(_TMP_SUFFIX):
                    os.remove(osp.join(folder, name))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Add the random states gathered for this save.

        Args:
            runner (Runner): The runner of the training process.
            checkpoint (dict): The checkpoint about to be written.
        """
        if self._rng_states is not None:
            checkpoint['rng_states'] = self._rng_states

    def _save_checkpoint_with_step(self, runner, step: int,
                                   meta: dict) -> None:
        """Write checkpoint ``step``, then the pointer, then delete old ones.

        Args:
            runner (Runner): The runner of the training process.
            step (int): The epoch or iteration of the checkpoint.
            meta (dict): Meta information saved in the checkpoint.
        """
        outdated = None
        if self.max_keep_ckpts > 0 and (not self.keep_ckpt_ids
                                        or self.keep_ckpt_ids[-1] != step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        # A collective call: every rank reaches this line for each save.
        self._rng_states = (
            all_gather_object(get_rng_state())
            if self.save_rng_state else None)
        save_name = _tmp_name(ckpt_filename) if self._local else ckpt_filename
        runner.save_checkpoint(
            self.out_dir,
            save_name,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        self._rng_states = None

        # Model-parallel runners gather sharded states on all ranks above;
        # the files are the main process's business.
        if not is_main_process():
            return
        if self._local:
            _commit(osp.join(self.out_dir, save_name), self.last_ckpt)
        # The pointer always lives in the local work_dir, as in mmengine.
        atomic_write(
            osp.join(runner.work_dir, POINTER_FILE),
            self.last_ckpt.encode('utf-8'))

        if outdated is not None:
            path = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(outdated))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                # Checkpoints saved by DeepSpeed are folders.
                self.file_backend.rmtree(path)
