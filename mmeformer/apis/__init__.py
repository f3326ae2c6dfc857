"""Train and test our configs in their host (MMPretrain, MMDetection or
MMSegmentation), as ``tools/train.py`` and ``tools/test.py`` do."""
from .errors import (MissingResourceError, SetupError, UnknownHostError,
                     UnsupportedOptionError)
from .evaluate import apply_test_options, evaluate
from .hosts import HOSTS, Host, get_host
from .preflight import check_test, check_train
from .runner import build_runner, load_config
from .train import apply_train_options, train

__all__ = [
    'MissingResourceError', 'SetupError', 'UnknownHostError',
    'UnsupportedOptionError', 'apply_test_options', 'evaluate', 'HOSTS',
    'Host', 'get_host', 'check_test', 'check_train', 'build_runner',
    'load_config', 'apply_train_options', 'train'
]
