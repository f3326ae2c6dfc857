"""Registries of mmeformer.

Every registry is a child of the matching mmengine root registry, with the
scope ``mmeformer``. A config whose ``default_scope`` is ``mmpretrain``,
``mmdet`` or ``mmseg`` can therefore build ``type='mmeformer.<Name>'`` with
no other import: mmengine imports ``mmeformer.registry`` for the
``mmeformer.`` prefix, and the registry imports its ``locations`` lazily the
first time a name is looked up.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import Registry

#: Backbones, heads, classifiers and other ``nn.Module`` building blocks.
#: The classifiers are a location of their own: they name their errors
#: through ``mmeformer.runtime``, which imports ``mmeformer.models``.
MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    scope='mmeformer',
    locations=['mmeformer.models', 'mmeformer.models.classifiers'])

#: Runner hooks.
HOOKS = Registry(
    'hook',
    parent=MMENGINE_HOOKS,
    scope='mmeformer',
    locations=['mmeformer.engine'])

#: Optimizer wrapper constructors.
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope='mmeformer',
    locations=['mmeformer.engine'])

#: Model wrappers (the data-parallel sandwich training of the search).
MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=MMENGINE_MODEL_WRAPPERS,
    scope='mmeformer',
    locations=['mmeformer.search'])
