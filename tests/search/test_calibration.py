"""BatchNorm recalibration: the network inference runs, on batches that are
the same in every process and every run."""
import random

import numpy as np
import torch

from mmeformer.demo.shapes import generate_shape_classes
from mmeformer.models.backbones.efficientformer_v2_supernet import \
    recalibrate_bn
from mmeformer.search.session import _fixed_batches


def running_stats(model):
    return {
        name: value.clone()
        for name, value in model.state_dict().items()
        if name.endswith(('running_mean', 'running_var'))
    }


def test_recalibration_runs_without_stochastic_depth(
        supernet_cfg, build_supernet_classifier):
    backbone = dict(supernet_cfg['backbone'], drop_path_rate=0.5)
    dropping = build_supernet_classifier(backbone=backbone).train()
    plain = build_supernet_classifier().train()
    assert all(
        torch.equal(a, b) for a, b in zip(dropping.state_dict().values(),
                                          plain.state_dict().values()))
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randn(4, 3, 33, 33, generator=generator)]

    def forward(model, inputs):
        return model.extract_feat(inputs)

    arch = dropping.backbone.space.smallest()
    for model in (dropping, plain):
        model.backbone.set_subnet(arch)
        recalibrate_bn(model, batches, forward)
    # Every block would be dropped with probability up to 0.5; the
    # statistics are those of the whole network, as without drop path.
    expected = running_stats(plain)
    found = running_stats(dropping)
    for name, value in expected.items():
        torch.testing.assert_close(found[name], value, msg=name)
    # The train/eval mode of every module is restored.
    assert all(m.training for m in dropping.modules())


def test_calibration_batches_are_seeded(tmp_path):
    root = tmp_path / 'shapes_cls'
    generate_shape_classes(
        str(root), num_train=1, num_val=1, num_test=1, img_size=32)
    loader = dict(
        batch_size=4,
        dataset=dict(
            type='CustomDataset',
            data_root=str(root),
            data_prefix='train',
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(
                    type='RandomResizedCrop',
                    scale=24,
                    crop_ratio_range=(0.2, 1.0)),
                dict(type='RandomFlip', prob=0.5, direction='horizontal'),
                dict(type='PackInputs'),
            ]))

    def inputs(seed):
        return [
            torch.stack(batch['inputs'])
            for batch in _fixed_batches(loader, 2, seed)
        ]

    first = inputs(0)
    # The same batches again, although the global streams moved on.
    random.random()
    np.random.rand()
    torch.rand(1)
    again = inputs(0)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    other = inputs(1)
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    # The global streams are left as they were.
    state = (random.getstate(), np.random.get_state()[1].copy(),
             torch.get_rng_state())
    inputs(0)
    assert random.getstate() == state[0]
    assert np.array_equal(np.random.get_state()[1], state[1])
    assert torch.equal(torch.get_rng_state(), state[2])
