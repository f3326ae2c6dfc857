from .atomic_files import atomic_output, atomic_torch_save, atomic_write_bytes
from .checkpoint import (CHECKPOINT_HINTS, UnreadableCheckpointError,
                         UnsafeCheckpointError, describe_problems,
                         extract_state_dict, load_from_local, read_checkpoint,
                         register_safe_checkpoint_loader, state_dict_problems,
                         training_state_globals)
from .collect_env import collect_env, verify_environment
from .config import (CfgOptionsAction, closest_files, missing_file_message,
                     register_config_prefix)
from .errors import (CheckpointError, ConfigError, MissingResourceError,
                     SetupError, UnknownHostError, UnsupportedOptionError)
from .host_warnings import quiet_host_warnings
from .size import Grid, Size, parse_size

__all__ = [
    'UnreadableCheckpointError', 'UnsafeCheckpointError', 'describe_problems',
    'extract_state_dict', 'load_from_local', 'read_checkpoint',
    'register_safe_checkpoint_loader', 'training_state_globals', 'collect_env',
    'verify_environment', 'CfgOptionsAction', 'closest_files',
    'missing_file_message', 'register_config_prefix', 'Grid', 'Size',
    'parse_size', 'atomic_output', 'atomic_torch_save', 'atomic_write_bytes',
    'CHECKPOINT_HINTS', 'SetupError', 'MissingResourceError',
    'UnknownHostError', 'UnsupportedOptionError', 'ConfigError',
    'CheckpointError', 'quiet_host_warnings', 'state_dict_problems'
]
