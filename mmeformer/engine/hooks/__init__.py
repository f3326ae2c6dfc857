from .atomic_checkpoint_hook import AtomicCheckpointHook
from .random_state_hook import RandomStateHook, get_rng_state, set_rng_state
from .resume_fallback_hook import ResumeFallbackHook, checkpoint_defect

__all__ = [
    'AtomicCheckpointHook', 'RandomStateHook', 'ResumeFallbackHook',
    'checkpoint_defect', 'get_rng_state', 'set_rng_state'
]
