"""``--resume`` that checks what it would load before mmengine loads it."""
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional

from mmengine.hooks import CheckpointHook, Hook

from mmeformer.registry import HOOKS
from ..mmengine_shim import (POINTER_FILE, get_resume_request,
                             set_resume_checkpoint)

__all__ = ['ResumeFallbackHook', 'checkpoint_defect']


def checkpoint_defect(path: str) -> Optional[str]:
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


def _read_pointer(pointer: str) -> str:
    with open(pointer, 'rb') as f:
        raw = f.read()
    try:
        return raw.decode('utf-8').strip()
    except UnicodeDecodeError:
        return ''


@HOOKS.register_module()
class ResumeFallbackHook(Hook):
    """Resume from the newest complete checkpoint when the pointer is broken.

    Before mmengine loads anything, a ``--resume`` run checks what it would
    load. If the ``last_checkpoint`` pointer is empty, unreadable, or names
    a missing or truncated file, the run resumes from the newest complete
    checkpoint named like the checkpoint hook's ``filename_tmpl`` (in its
    folder or the pointer's) and says so in a warning; if there is none, it
    stops with an error that names what it found. A broken file given as
    ``--resume CKPT`` is refused with the reason. Checkpoints on remote
    storage are left to mmengine.

    The checked path is handed to the runner as an explicit resume file, so
    every rank resumes from the same checkpoint.
    """

    def before_run(self, runner) -> None:
        """Choose the checkpoint to resume from.

        Args:
            runner (Runner): The runner of the training process.

        Raises:
            RuntimeError: When resuming cannot work, with the reason.
        """
        resume, explicit = get_resume_request(runner)
        if not resume:
            return
        if explicit is not None:
            reason = (None if '://' in str(explicit) else
                      checkpoint_defect(explicit))
            if reason is not None:
                raise RuntimeError(
                    f'Cannot resume from {explicit}: the file is {reason}. '
                    'Pass another checkpoint to --resume, or --resume '
                    'without a file to take the newest complete one in '
                    'the work_dir.')
            return
        chosen = self._choose_checkpoint(runner)
        if chosen is not None:
            set_resume_checkpoint(runner, chosen)

    def _choose_checkpoint(self, runner) -> Optional[str]:
        """The checkpoint a ``--resume`` without a file should load."""
        saver = next(
            (h for h in runner.hooks if isinstance(h, CheckpointHook)), None)
        templates = ([saver.filename_tmpl]
                     if saver is not None else ['epoch_{}.pth', 'iter_{}.pth'])
        folders = [runner.work_dir]
        if saver is not None and saver.out_dir not in (None, runner.work_dir):
            # Where CheckpointHook.before_train will put them.
            folders = [
                osp.join(saver.out_dir,
                         osp.basename(runner.work_dir.rstrip(osp.sep)))
            ]
        pointer = osp.join(runner.work_dir, POINTER_FILE)
        problem = None
        if osp.isfile(pointer):
            target = _read_pointer(pointer)
            if '://' in target:
                return target
            if target:
                problem = checkpoint_defect(target)
                if problem is None:
                    return target
                folders.append(osp.dirname(target))
                problem = f'{pointer} names {target}, which is {problem}'
            else:
                problem = f'{pointer} is empty or unreadable'

        candidates = _complete_checkpoints(folders, templates)
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
                f'checkpoint matching {" or ".join(map(repr, templates))} is '
                f'in {", ".join(folders)}. Delete {pointer} to train from '
                'scratch, or pass a checkpoint to --resume.')
        # Nothing saved yet: mmengine starts from scratch.
        return None


def _complete_checkpoints(folders: List[str],
                          templates: List[str]) -> List[str]:
    """Complete checkpoints named like ``templates`` in ``folders``, newest
    step first."""
    patterns = []
    for template in templates:
        pieces = re.split(r'\{[^{}]*\}', template)
        patterns.append(
            re.compile('^' + r'(\d+)'.join(map(re.escape, pieces)) + '$'))
    found = {}
    for folder in folders:
        for name in os.listdir(folder) if osp.isdir(folder) else ():
            match = next(filter(None, (p.match(name) for p in patterns)), None)
            path = osp.join(folder, name)
            if match and checkpoint_defect(path) is None:
                found[osp.abspath(path)] = int(match.group(1))
    return sorted(found, key=found.get, reverse=True)
