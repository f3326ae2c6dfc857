"""The errors that stop a run before it starts, as the run-time layer names
them; they are defined in :mod:`mmeformer.utils.errors`, which the models
use too."""
from ..utils.errors import (CheckpointError, ConfigError, MissingResourceError,
                            SetupError, UnknownHostError,
                            UnsupportedOptionError)

__all__ = [
    'SetupError', 'MissingResourceError', 'UnknownHostError',
    'UnsupportedOptionError', 'ConfigError', 'CheckpointError'
]
