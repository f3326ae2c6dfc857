"""What ``tools/train.py`` and ``tools/test.py`` run: the host of a config
(MMPretrain, MMDetection or MMSegmentation), the checks before a run, the
runner, training and evaluation."""
from .checkpoint_fit import check_checkpoint
from .cli import (add_config_arguments, add_launcher_arguments,
                  exit_on_setup_error, parse_tool_args)
from .errors import (CheckpointError, ConfigError, MissingResourceError,
                     SetupError, UnknownHostError, UnsupportedOptionError)
from .evaluate import apply_test_options, evaluate
from .hosts import HOSTS, Host, get_host
from .input_size import check_input_size
from .launcher import LAUNCHER_VARIABLES, check_launcher_environment
from .meta_model import build_meta_model, check_neck_inputs
from .preflight import check_test, check_train
from .runner import ToolRunner, build_runner, load_config
from .train import apply_train_options, train, warn_if_nothing_to_resume

__all__ = [
    'CheckpointError', 'ConfigError', 'MissingResourceError', 'SetupError',
    'UnknownHostError', 'UnsupportedOptionError', 'apply_test_options',
    'evaluate', 'HOSTS', 'Host', 'get_host', 'check_checkpoint',
    'build_meta_model', 'check_neck_inputs', 'check_test', 'check_train',
    'ToolRunner', 'build_runner', 'load_config', 'apply_train_options',
    'train', 'warn_if_nothing_to_resume', 'add_config_arguments',
    'add_launcher_arguments', 'parse_tool_args', 'exit_on_setup_error',
    'check_input_size', 'check_launcher_environment', 'LAUNCHER_VARIABLES'
]
