import random

import pytest
import torch

from mmeformer.models.backbones import (ArchOutsideSpaceError,
                                        EfficientFormerV2,
                                        EfficientFormerV2Space)


@pytest.fixture(scope='module')
def space():
    return EfficientFormerV2Space.default()


@pytest.mark.parametrize('name', ['s0', 's1', 's2', 'l'])
def test_the_published_archs_lie_in_the_default_space(space, name):
    arch = space.check(space.published(name))
    assert arch['num_attn_blocks'] == [
        EfficientFormerV2.arch_zoo[name]['num_attn_blocks']
    ] * 2


def test_largest_smallest_and_samples_build(space):
    largest, smallest = space.largest(), space.smallest()
    assert largest['depths'] == [5, 5, 15, 10]
    assert largest['channels'] == [40, 80, 192, 384]
    assert smallest['num_attn_blocks'] == [0, 0]
    rng = random.Random(0)
    samples = [space.sample(rng) for _ in range(20)]
    assert all(space.contains(arch) for arch in samples)
    assert len({str(arch) for arch in samples}) == 20
    model = EfficientFormerV2(samples[0], out_indices=(0, 1, 2, 3)).eval()
    outs = model(torch.rand(1, 3, 65, 97))
    assert [o.shape[1] for o in outs] == samples[0]['channels']


def test_per_stage_attention_counts_place_the_attention_blocks():
    arch = dict(
        depths=[1, 1, 3, 2],
        channels=[16, 24, 32, 48],
        num_attn_blocks=[1, 2],
        mlp_ratios=[[4], [4], [1, 2, 3], [4, 2]])
    model = EfficientFormerV2(arch)
    with_attn = [(s, b) for s, stage in enumerate(model.stages)
                 for b, block in enumerate(stage.blocks)
                 if block.token_mixer is not None]
    assert with_attn == [(2, 2), (3, 0), (3, 1)]


@pytest.mark.parametrize('change, message', [
    (dict(channels=[32, 48, 100, 176]), 'Stage 2 is 100 channels wide'),
    (dict(depths=[2, 2, 16, 4]), 'Stage 2 has 16 blocks'),
    (dict(num_attn_blocks=[2, 7]), 'num_attn_blocks'),
])
def test_an_arch_outside_the_space_is_named(space, change, message):
    arch = dict(space.published('s0'), **change)
    if 'depths' in change:
        arch['mlp_ratios'] = [[4.0] * d for d in change['depths']]
    with pytest.raises(ArchOutsideSpaceError, match=message):
        space.check(arch)


def test_a_ratio_outside_the_space_names_its_block(space):
    arch = space.published('s0')
    arch['mlp_ratios'][3][1] = 2.5
    with pytest.raises(ArchOutsideSpaceError, match='Block 1 of stage 3'):
        space.check(arch)


def test_the_space_round_trips_through_a_dict(space):
    again = EfficientFormerV2Space.from_dict(space.to_dict())
    assert again == space
    assert again.fingerprint() == space.fingerprint()
    other = EfficientFormerV2Space.from_dict(
        dict(space.to_dict(), mlp_ratios=[2, 4]))
    assert other.fingerprint() != space.fingerprint()
