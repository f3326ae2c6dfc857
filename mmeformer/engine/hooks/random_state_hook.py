"""Random states of every rank, saved with each checkpoint and restored."""
import random
from typing import List, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook

from mmeformer.registry import HOOKS

__all__ = ['RandomStateHook', 'get_rng_state', 'set_rng_state']


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
class RandomStateHook(Hook):
    """Resumed runs repeat the random draws of an uninterrupted one.

    When the checkpoint hook is about to save, the random states of Python,
    numpy and torch of every rank are gathered (all ranks take part) and
    stored in the checkpoint as ``rng_states``; a resumed run restores its
    rank's state at the first resumed iteration, so RoI sampling and
    augmentation draw what they would have drawn without the stop. This is
    exact when the data pipeline runs in worker processes
    (``num_workers > 0``): with ``num_workers=0`` the pipeline draws from
    the main process while mmengine skips the data already seen.
    """

    # Before CheckpointHook (VERY_LOW): the states are gathered first.
    priority = 'LOW'

    def __init__(self) -> None:
        self._saver: Optional[CheckpointHook] = None
        self._gathered: Optional[List[dict]] = None
        self._resumed: Optional[Tuple[int, dict]] = None

    def before_run(self, runner) -> None:
        """Find the checkpoint hook whose saves carry the states.

        Args:
            runner (Runner): The runner of the training process.
        """
        self._saver = next(
            (h for h in runner.hooks if isinstance(h, CheckpointHook)), None)

    def _gather_if(self, will_save: bool) -> None:
        # A collective call: every rank evaluates the same condition.
        self._gathered = (
            all_gather_object(get_rng_state()) if will_save else None)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        """Gather the states if the checkpoint hook saves after this
        iteration."""
        saver = self._saver
        self._gather_if(
            saver is not None and not saver.by_epoch
            and (saver.every_n_train_iters(runner, saver.interval,
                                           saver.save_begin) or
                 (saver.save_last and saver.is_last_train_iter(runner))))

    def after_train_epoch(self, runner) -> None:
        """Gather the states if the checkpoint hook saves after this
        epoch."""
        saver = self._saver
        self._gather_if(
            saver is not None and saver.by_epoch and
            (saver.every_n_epochs(runner, saver.interval, saver.save_begin) or
             (saver.save_last and saver.is_last_train_epoch(runner))))

    def after_val_epoch(self, runner, metrics=None) -> None:
        """Gather the states if the checkpoint hook may save the best
        checkpoint, which also saves the latest one again."""
        self._gather_if(
            self._saver is not None and bool(self._saver.save_best))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Add the gathered states to the checkpoint (on the main process).

        Args:
            runner (Runner): The runner of the training process.
            checkpoint (dict): The checkpoint about to be written.
        """
        if self._gathered is not None:
            checkpoint['rng_states'] = self._gathered

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep this rank's saved state until training restarts.

        It cannot be applied now: mmengine then replays the data loader up
        to the resumed iteration, which would consume random numbers.

        Args:
            runner (Runner): The runner of the training process.
            checkpoint (dict): The loaded checkpoint.
        """
        states = checkpoint.get('rng_states')
        if states is None:
            return
        if len(states) != get_world_size():
            runner.logger.warning(
                f'The checkpoint holds random states of {len(states)} '
                f'processes, this run has {get_world_size()}; random draws '
                'will differ from the interrupted run.')
            return
        self._resumed = (checkpoint['meta']['iter'], states[get_rank()])

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        """Restore the state on the first iteration after resuming."""
        if self._resumed is None:
            return
        resumed_iter, state = self._resumed
        self._resumed = None
        # Only for training resumed from that checkpoint, not for a
        # `load_from` fine-tuning that starts at iteration 0.
        if runner.iter == resumed_iter:
            set_rng_state(state)
