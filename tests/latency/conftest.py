"""Shared fixtures of the latency tests: a tiny search space, its table and
the V1 group of a table."""
import copy

import pytest
import torch

from mmeformer.latency import LatencyTable, table_meta
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


#: A hand-made V1 group: V1-L1's blocks a power of two each, so that its sum
#: tells how often it added which; V1-L3's and V1-L7's 1000 each, so that
#: their sums count their blocks.
V1_ENTRIES = {
    'v1.stem:48': 1,
    'v1.pool0:48x4': 2,
    'v1.down1:48-96': 4,
    'v1.pool1:96x4': 8,
    'v1.down2:96-224': 16,
    'v1.pool2:224x4': 32,
    'v1.down3:224-448': 64,
    'v1.pool3:448x4': 128,
    'v1.attn3:448x4': 256,
    'v1.head:448': 512,
    'v1.stem:64': 1000,
    'v1.pool0:64x4': 1000,
    'v1.down1:64-128': 1000,
    'v1.pool1:128x4': 1000,
    'v1.down2:128-320': 1000,
    'v1.pool2:320x4': 1000,
    'v1.down3:320-512': 1000,
    'v1.pool3:512x4': 1000,
    'v1.attn3:512x4': 1000,
    'v1.head:512': 1000,
    'v1.stem:96': 1000,
    'v1.pool0:96x4': 1000,
    'v1.down1:96-192': 1000,
    'v1.pool1:192x4': 1000,
    'v1.down2:192-384': 1000,
    'v1.pool2:384x4': 1000,
    'v1.down3:384-768': 1000,
    'v1.attn3:768x4': 1000,
    'v1.head:768': 1000,
}


@pytest.fixture
def v1_meta(tiny_meta):
    """``tiny_meta`` of a table that also holds the V1 blocks."""
    return dict(tiny_meta, with_v1=True)


@pytest.fixture
def v1_entries():
    """A copy of :data:`V1_ENTRIES`."""
    return dict(V1_ENTRIES)


@pytest.fixture
def here_table(tiny_space, hand_entries, v1_entries):
    """A hand-made table of ``tiny_space`` with the V1 blocks, as if made on
    this machine (torch, 64x64, one run per network)."""
    meta = table_meta(
        tiny_space,
        'torch',
        'fp32',
        64,
        threads=1,
        repeats=1,
        warmup=0,
        with_head=True,
        with_v1=True)
    return LatencyTable(meta, dict(hand_entries, **v1_entries))
