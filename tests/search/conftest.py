"""A tiny classifier supernet shared by the search tests."""
import copy

import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import mmeformer.search  # noqa: F401  (registers SandwichImageClassifier)
from mmeformer.testing import randomize_weights

NUM_CLASSES = 4
#: Two widths per stage, every depth and attention count possible.
TINY_SPACE = dict(
    widths=[[8, 16], [16, 24], [24, 32], [32, 48]],
    min_depths=[1, 1, 1, 1],
    max_depths=[2, 1, 2, 2],
    max_attn_blocks=[1, 1],
    mlp_ratios=[1, 2, 4])


def classifier_cfg(**kwargs):
    cfg = dict(
        type='mmeformer.SandwichImageClassifier',
        backbone=dict(
            type='mmeformer.EfficientFormerV2Supernet',
            space=TINY_SPACE,
            final_norm=True,
            attn_ref_size=32),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='mmeformer.EfficientFormerClsHead',
            num_classes=NUM_CLASSES,
            in_channels=48),
        data_preprocessor=dict(
            type='ClsDataPreprocessor',
            mean=[128., 128., 128.],
            std=[64., 64., 64.]))
    cfg.update(kwargs)
    return cfg


@pytest.fixture(autouse=True)
def one_thread():
    """Run these small models on one thread: on a busy machine two threads
    of tiny convolutions wait for each other far longer than they compute."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def tiny_space():
    """The tiny search space (a fresh dict)."""
    return copy.deepcopy(TINY_SPACE)


@pytest.fixture
def supernet_cfg():
    """The tiny classifier supernet's config (a fresh dict)."""
    return classifier_cfg()


@pytest.fixture
def build_supernet_classifier():

    def build(seed=0, **kwargs):
        torch.manual_seed(seed)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            model = MODELS.build(classifier_cfg(**kwargs))
        model.init_weights()
        return randomize_weights(model, seed)

    return build


@pytest.fixture
def sandwich_gradients():
    """``grads(model, data, archs)``: per parameter name, the sum of the
    gradients of the sandwich step's losses on ``data`` (a dataloader
    batch), computed subnet by subnet with ``torch.autograd.grad``;
    parameters no subnet used are left out."""

    def grads(model, data, archs):
        from mmeformer.search import inplace_distillation_loss
        data = model.data_preprocessor(data, True)
        inputs, samples = data['inputs'], data['data_samples']
        params = dict(model.named_parameters())
        total = {}

        def add(loss):
            parts = torch.autograd.grad(
                loss, list(params.values()), allow_unused=True)
            for name, grad in zip(params, parts):
                if grad is not None:
                    total[name] = total.get(name, 0) + grad

        model.backbone.set_subnet(archs[0])
        feats = model.extract_feat(inputs)
        add(model.head.loss(feats, samples)['loss'])
        teacher = model.head(feats).detach()
        for arch in archs[1:]:
            model.backbone.set_subnet(arch)
            add(
                inplace_distillation_loss(
                    model.head(model.extract_feat(inputs)), teacher))
        return total

    return grads
