import pytest
from mmengine.registry import DefaultScope, init_default_scope

from mmeformer.registry import MODELS


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmdet', 'mmseg'])
def test_scoped_name_resolves_from_every_host(scope):
    """A host config builds ``mmeformer.<Name>`` with no import of ours."""
    host_models = {
        'mmpretrain': 'mmpretrain.registry',
        'mmdet': 'mmdet.registry',
        'mmseg': 'mmseg.registry',
    }
    registry = __import__(host_models[scope], fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        init_default_scope(scope)
        backbone_cls = registry.get('mmeformer.EfficientFormerV2')
    assert backbone_cls is MODELS.get('EfficientFormerV2')
    assert backbone_cls.__module__.startswith('mmeformer.models')


def test_registry_is_a_child_of_mmengine_root():
    from mmengine.registry import MODELS as ROOT
    assert MODELS.parent is ROOT
    assert ROOT.children['mmeformer'] is MODELS
