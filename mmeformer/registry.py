"""Registries of mmeformer.

Every registry is a child of the matching mmengine root registry, with the
scope ``mmeformer``. A config whose ``default_scope`` is ``mmpretrain``,
``mmdet`` or ``mmseg`` can therefore build ``type='mmeformer.<Name>'`` with
no other import: mmengine imports ``mmeformer.registry`` for the
``mmeformer.`` prefix, and the registry imports its ``locations`` lazily the
first time a name is looked up.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

#: Backbones, heads and other ``nn.Module`` building blocks.
MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    scope='mmeformer',
    locations=['mmeformer.models'])

#: Runner hooks.
HOOKS = Registry(
    'hook',
    parent=MMENGINE_HOOKS,
    scope='mmeformer',
    locations=['mmeformer.engine'])
