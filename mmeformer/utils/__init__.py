from .checkpoint import (UnsafeCheckpointError, load_from_local,
                         register_safe_checkpoint_loader,
                         training_state_globals)
from .collect_env import collect_env, verify_environment
from .config import CfgOptionsAction, register_config_prefix
from .size import parse_size

__all__ = [
    'UnsafeCheckpointError', 'load_from_local',
    'register_safe_checkpoint_loader', 'training_state_globals',
    'collect_env', 'verify_environment', 'CfgOptionsAction',
    'register_config_prefix', 'parse_size'
]
