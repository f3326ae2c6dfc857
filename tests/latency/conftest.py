"""Shared fixtures of the latency tests: a tiny search space and its table."""
import copy

import pytest
import torch

from mmeformer.models.backbones import EfficientFormerV2Space


@pytest.fixture
def tiny_space():
    """Two widths in one stage (stage 2), one in the others, one block per
    stage, an attention block allowed in stage 3."""
    return EfficientFormerV2Space(
        widths=[[8], [16], [16, 24], [32]],
        min_depths=[1, 1, 1, 1],
        max_depths=[1, 1, 2, 1],
        max_attn_blocks=[0, 1],
        mlp_ratios=[2])


@pytest.fixture
def tiny_meta(tiny_space):
    """The meta of a hand-made table of ``tiny_space`` (torch, 64x64)."""
    return dict(
        runtime='torch',
        precision='fp32',
        input_size=[64, 64],
        with_head=True,
        device='test CPU',
        threads=1,
        versions=dict(torch=torch.__version__),
        repeats=1,
        warmup=0,
        space=tiny_space.to_dict(),
        space_fingerprint=tiny_space.fingerprint())


#: A hand-made table of the tiny space: a power of two per block, so that
#: every sum tells which blocks it added.
HAND_ENTRIES = {
    'stem:8': 1,
    'ffn0:8x2': 2,
    'down1:8-16': 4,
    'ffn1:16x2': 8,
    'down2:16-16': 16,
    'down2:16-24': 32,
    'ffn2:16x2': 64,
    'ffn2:24x2': 128,
    'down3:16-32': 256,
    'down3:24-32': 512,
    'ffn3:32x2': 1024,
    'attn3:32x2': 2048,
    'head:32': 4096,
}

HAND_ARCH = dict(
    depths=[1, 1, 2, 1],
    channels=[8, 16, 24, 32],
    num_attn_blocks=[0, 1],
    mlp_ratios=[[2], [2], [2, 2], [2]])


@pytest.fixture
def hand_entries():
    """A copy of :data:`HAND_ENTRIES`."""
    return dict(HAND_ENTRIES)


@pytest.fixture
def hand_arch():
    """An arch of ``tiny_space`` (a copy of :data:`HAND_ARCH`)."""
    return copy.deepcopy(HAND_ARCH)
