"""The run-time layer's errors are those the models raise, defined below
both; imports point down: the models and the converters import nothing from
the layers above them, the utilities nothing from the models either."""
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


#: The packages above the models and the converters.
ABOVE_MODELS = ('mmeformer.runtime', 'mmeformer.deployment',
                'mmeformer.latency', 'mmeformer.search', 'mmeformer.apis')


def upward_imports(package, above):
    """``{file: [modules]}`` of the files of ``mmeformer/<package>`` that
    import one of the packages ``above`` (or a module of theirs)."""
    files = glob.glob(osp.join(PACKAGE, package, '**', '*.py'), recursive=True)
    assert osp.join(PACKAGE, package, '__init__.py') in files
    found = {}
    for path in files:
        upward = [
            name for name in imported_modules(path)
            if any(name == p or name.startswith(p + '.') for p in above)
        ]
        if upward:
            found[osp.relpath(path, PACKAGE)] = upward
    return found


def test_models_do_not_import_the_run_time_layer():
    assert osp.isfile(
        osp.join(PACKAGE, 'models', 'classifiers', 'distillation.py'))
    for package in ('models', 'converters'):
        assert not upward_imports(package, ABOVE_MODELS)


def test_utils_import_neither_the_models_nor_the_layers_above():
    assert not upward_imports('utils', ABOVE_MODELS + ('mmeformer.models', ))
