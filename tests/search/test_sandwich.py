"""SandwichImageClassifier: one step accumulates the gradients of the
largest subnet on the labels and of every student on its soft output."""
import copy
import random

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmpretrain.structures import DataSample

from mmeformer.runtime import ConfigError
from mmeformer.search import inplace_distillation_loss

NUM_CLASSES = 4


def batch(seed=0, size=33):
    generator = torch.Generator().manual_seed(seed)
    inputs = [
        torch.randint(0, 256, (3, size, size + 4),
                      generator=generator).to(torch.uint8) for _ in range(4)
    ]
    samples = [DataSample().set_gt_label(i % NUM_CLASSES) for i in range(4)]
    return dict(inputs=inputs, data_samples=samples)


def test_a_step_updates_the_shared_weights_with_every_subnets_gradient(
        build_supernet_classifier):
    model = build_supernet_classifier().train()
    reference = copy.deepcopy(model)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1.))
    random.seed(3)
    log = model.train_step(batch(), optim)
    assert set(log) == {'loss', 'loss_kd'}
    archs = model.last_archs
    space = model.backbone.space
    assert archs[:2] == [space.largest(), space.smallest()]
    assert len(archs) == 4 and archs[2] != archs[3]

    # The same four passes by hand, one gradient per subnet.
    data = reference.data_preprocessor(batch(), True)
    inputs, samples = data['inputs'], data['data_samples']
    params = dict(reference.named_parameters())
    grads = []
    reference.backbone.set_subnet(archs[0])
    feats = reference.extract_feat(inputs)
    loss = reference.head.loss(feats, samples)['loss']
    teacher = reference.head(feats).detach()
    grads.append(
        torch.autograd.grad(loss, list(params.values()), allow_unused=True))
    for arch in archs[1:]:
        reference.backbone.set_subnet(arch)
        student = reference.head(reference.extract_feat(inputs))
        loss = inplace_distillation_loss(student, teacher)
        grads.append(
            torch.autograd.grad(
                loss, list(params.values()), allow_unused=True))

    updated = dict(model.named_parameters())
    for k, (name, before) in enumerate(params.items()):
        parts = [g[k] for g in grads if g[k] is not None]
        change = before.detach() - updated[name].detach()
        if not parts:
            assert torch.equal(change, torch.zeros_like(change)), name
            continue
        torch.testing.assert_close(change, sum(parts), msg=name)
    # Every subnet reached the weights: each one's gradient is non-zero on
    # the stem, which all of them use.
    stem = list(params).index('backbone.stem.conv1.conv.weight')
    assert all(g[stem].abs().sum() > 0 for g in grads)
    assert model.backbone.arch == space.largest()


def test_a_supernet_is_required(build_supernet_classifier):
    backbone = dict(
        type='mmeformer.EfficientFormerV2',
        arch=dict(
            depths=[1, 1, 1, 1],
            channels=[8, 16, 24, 32],
            num_attn_blocks=1,
            mlp_ratios=[[1]] * 4))
    with pytest.raises(ConfigError, match='trains a supernet'):
        build_supernet_classifier(backbone=backbone)


def test_the_largest_subnet_can_learn_from_an_external_teacher(
        build_supernet_classifier, supernet_cfg):
    """With ``teacher`` (the ImageNet recipe's RegNetY), the largest subnet
    takes the DeiT-style loss on both classifiers; the students still learn
    from the largest."""
    teacher = dict(
        type='ImageClassifier',
        backbone=dict(
            type='mmeformer.EfficientFormerV2',
            arch=dict(
                depths=[1, 1, 1, 1],
                channels=[8, 16, 24, 32],
                num_attn_blocks=1,
                mlp_ratios=[[1]] * 4)),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=32))
    head = dict(supernet_cfg['head'], distillation=True)
    model = build_supernet_classifier(teacher=teacher, head=head).train()
    assert model.teacher is not None
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    before = model.head.dist_head.weight.detach().clone()
    log = model.train_step(batch(), optim)
    assert set(log) == {'loss', 'loss_cls', 'loss_distill', 'loss_kd'}
    assert all(torch.isfinite(value) for value in log.values())
    assert not torch.equal(before, model.head.dist_head.weight)


def test_the_distributed_step_needs_a_sandwich_classifier():
    from mmeformer.search import SandwichDistributedDataParallel
    with pytest.raises(ConfigError, match='SandwichImageClassifier'):
        SandwichDistributedDataParallel(torch.nn.Linear(2, 2))
