from .atomic_checkpoint_hook import AtomicCheckpointHook
from .random_state_hook import RandomStateHook, get_rng_state, set_rng_state
from .resume_fallback_hook import ResumeFallbackHook, check_checkpoint

__all__ = [
    'AtomicCheckpointHook', 'RandomStateHook', 'ResumeFallbackHook',
    'check_checkpoint', 'get_rng_state', 'set_rng_state'
]
