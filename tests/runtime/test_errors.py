"""The run-time layer's errors are those the models raise, defined below
both: the models import nothing from the run-time layer."""
import ast
import glob
import os.path as osp

import mmeformer
from mmeformer import runtime, utils
from mmeformer.models.classifiers import distillation

PACKAGE = osp.dirname(mmeformer.__file__)


def imported_modules(path):
    """The absolute names of the modules a file of mmeformer imports."""
    package = osp.relpath(osp.dirname(path),
                          osp.dirname(PACKAGE)).split(osp.sep)
    names = []
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level \
                else []
            module = '.'.join(base + ([node.module] if node.module else []))
            names += [module] + [f'{module}.{a.name}' for a in node.names]
    return names


def test_one_set_of_errors():
    for name in ('SetupError', 'MissingResourceError', 'UnknownHostError',
                 'UnsupportedOptionError', 'ConfigError', 'CheckpointError'):
        assert getattr(runtime, name) is getattr(utils, name)
    assert distillation.CheckpointError is runtime.CheckpointError
    assert distillation.CHECKPOINT_HINTS is utils.CHECKPOINT_HINTS


def test_models_do_not_import_the_run_time_layer():
    files = glob.glob(
        osp.join(PACKAGE, 'models', '**', '*.py'), recursive=True)
    assert osp.join(PACKAGE, 'models', 'classifiers',
                    'distillation.py') in files
    for path in files:
        upward = [
            name for name in imported_modules(path)
            if name.startswith(('mmeformer.runtime', 'mmeformer.deployment'))
        ]
        assert not upward, f'{path} imports {upward}'
