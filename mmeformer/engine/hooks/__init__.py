from .atomic_checkpoint_hook import (AtomicCheckpointHook, atomic_write,
                                     check_checkpoint, get_rng_state,
                                     set_rng_state)

__all__ = [
    'AtomicCheckpointHook', 'atomic_write', 'check_checkpoint',
    'get_rng_state', 'set_rng_state'
]
