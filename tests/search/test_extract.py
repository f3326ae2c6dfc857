"""A subnet of a classifier supernet as files: a config inheriting the
supernet's and a checkpoint that loads strictly, with equal outputs."""
import random

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

from mmeformer.models.backbones import (EfficientFormerV2,
                                        EfficientFormerV2Space)
from mmeformer.search import extract_subnet, subnet_model_config, write_subnet
from mmeformer.utils import read_checkpoint


def test_the_written_subnet_loads_strictly_and_equals_the_supernet(
        tmp_path, supernet_cfg, build_supernet_classifier):
    supernet_file = tmp_path / 'supernet.py'
    supernet_file.write_text(
        "custom_imports = dict(imports=['mmeformer.search'])\n"
        f'model = {supernet_cfg!r}\n')
    cfg = Config.fromfile(str(supernet_file))
    model = build_supernet_classifier(seed=1).eval()
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    x = torch.randn(2, 3, 35, 41)
    for k, arch in enumerate(
            model.backbone.space.sample(random.Random(2)) for _ in range(2)):
        with torch.device('meta'), DefaultScope.overwrite_default_scope(
                'mmpretrain'):
            target = MODELS.build(subnet_model_config(cfg.model, arch))
        config, ckpt = write_subnet(
            cfg, model, arch, str(out_dir), target, name=f'found{k}')
        with torch.no_grad():
            expected = model(x, mode='tensor')
        subnet_cfg = Config.fromfile(config)
        assert subnet_cfg.model.type == 'ImageClassifier'
        assert subnet_cfg.model.backbone.arch == model.backbone.arch
        assert subnet_cfg.load_from == ckpt
        assert subnet_cfg.model_wrapper_cfg is None
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            plain = MODELS.build(subnet_cfg.model).eval()
        assert isinstance(plain.backbone, EfficientFormerV2)
        plain.load_state_dict(read_checkpoint(ckpt)['state_dict'], strict=True)
        with torch.no_grad():
            assert torch.equal(plain(x, mode='tensor'), expected)

    # A backbone alone gives the backbone's weights, without the prefix.
    state_dict, arch = extract_subnet(model.backbone, arch)
    backbone = EfficientFormerV2(**model.backbone.subnet_config())
    backbone.load_state_dict(state_dict, strict=True)


def test_a_supernet_with_a_teacher_gives_distillation_classifiers(
        supernet_cfg):
    """The ImageNet supernet's subnets keep the recipe's distillation."""
    model_cfg = dict(
        supernet_cfg, num_random=2, teacher=None, distillation_type='hard')
    space = EfficientFormerV2Space.from_dict(supernet_cfg['backbone']['space'])
    arch = space.sample(random.Random(0))
    subnet = subnet_model_config(model_cfg, arch)
    assert subnet['type'] == 'mmeformer.DistillationImageClassifier'
    assert 'num_random' not in subnet
    assert subnet['head']['in_channels'] == arch['channels'][-1]
    with torch.device('meta'), DefaultScope.overwrite_default_scope(
            'mmpretrain'):
        model = MODELS.build(subnet)
    assert isinstance(model.backbone, EfficientFormerV2)
    assert model.distillation_type == 'hard'
