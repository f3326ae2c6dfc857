import copy
import random

import pytest
import torch

from mmeformer.models.backbones import (ArchOutsideSpaceError,
                                        EfficientFormerV2,
                                        EfficientFormerV2Supernet)
from mmeformer.models.backbones.efficientformer_v2_supernet import (
    SpaceMismatchError, recalibrate_bn)

#: Two widths per stage, every depth and attention count possible.
TINY_SPACE = dict(
    widths=[[8, 16], [16, 24], [24, 32], [32, 48]],
    min_depths=[1, 1, 1, 1],
    max_depths=[2, 2, 3, 3],
    max_attn_blocks=[2, 2],
    mlp_ratios=[1, 2, 4])


@pytest.fixture(autouse=True)
def one_thread():
    """Small models on one thread: on a busy machine two threads of tiny
    convolutions wait for each other far longer than they compute."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def supernet(randomize):
    model = EfficientFormerV2Supernet(
        TINY_SPACE,
        out_indices=(0, 1, 2, 3),
        final_norm=True,
        attn_ref_size=64)
    return randomize(model).eval()


def extracted(supernet, arch):
    state_dict = supernet.subnet_state_dict(arch)
    model = EfficientFormerV2(**supernet.subnet_config()).eval()
    model.load_state_dict(state_dict, strict=True)
    return model


def test_subnets_equal_their_extracted_models_bit_for_bit(supernet):
    rng = random.Random(0)
    space = supernet.space
    archs = [space.largest(), space.smallest()]
    archs += [space.sample(rng) for _ in range(3)]
    x = torch.randn(1, 3, 35, 41)
    for arch in archs:
        model = extracted(supernet, arch)
        with torch.no_grad():
            expected, found = model(x), supernet(x)
        assert [o.shape[1] for o in found] == arch['channels']
        for a, b in zip(found, expected):
            assert torch.equal(a, b), arch


def test_attention_blocks_sit_at_the_end_of_stages_2_and_3(supernet):
    arch = dict(
        depths=[1, 2, 3, 2],
        channels=[8, 16, 24, 48],
        num_attn_blocks=[1, 2],
        mlp_ratios=[[1], [2, 4], [4, 1, 2], [2, 2]])
    supernet.set_subnet(arch)
    used = [(s, b) for s, stage in enumerate(supernet.stages)
            for b, block in enumerate(stage.blocks) if block.active
            and block.token_mixer is not None and block.use_token_mixer]
    assert used == [(2, 2), (3, 0), (3, 1)]
    assert sum(block.active for block in supernet.stages[3].blocks) == 2


def test_recalibration_gives_the_subnets_own_statistics(supernet):
    """Statistics re-estimated in the supernet are those the extracted model
    gets from the same batches, and the other channels keep theirs."""
    supernet = copy.deepcopy(supernet)
    arch = supernet.space.sample(random.Random(1))
    model = extracted(supernet, arch)
    batches = [torch.randn(2, 3, 33, 35) for _ in range(2)]
    full_norm = supernet.stages[3].blocks[0].mlp.fc2.bn
    before = full_norm.running_mean.clone()
    recalibrate_bn(supernet, batches)
    recalibrate_bn(model, batches)
    assert not supernet.training and not model.training
    assert full_norm.momentum == 0.1
    width = arch['channels'][3]
    assert not torch.allclose(full_norm.running_mean[:width], before[:width])
    assert torch.equal(full_norm.running_mean[width:], before[width:])
    own = supernet.subnet_state_dict(arch)
    for name, tensor in model.state_dict().items():
        if 'running' in name:
            torch.testing.assert_close(own[name], tensor, msg=name)


def test_an_arch_outside_the_space_is_refused(supernet):
    arch = supernet.space.largest()
    arch['channels'][2] = 40
    with pytest.raises(ArchOutsideSpaceError, match='Stage 2 is 40'):
        supernet.set_subnet(arch)


def test_a_checkpoint_of_another_space_is_refused(supernet):
    other = dict(TINY_SPACE, max_depths=[2, 2, 3, 2])
    model = EfficientFormerV2Supernet(other, attn_ref_size=64)
    with pytest.raises(SpaceMismatchError, match='another search space'):
        model.load_state_dict(supernet.state_dict())
