from .checkpoint import (UnsafeCheckpointError, load_from_local,
                         register_safe_checkpoint_loader,
                         training_state_globals)
from .collect_env import collect_env, verify_environment
from .config import register_config_prefix

__all__ = [
    'UnsafeCheckpointError', 'load_from_local',
    'register_safe_checkpoint_loader', 'training_state_globals',
    'collect_env', 'verify_environment', 'register_config_prefix'
]
