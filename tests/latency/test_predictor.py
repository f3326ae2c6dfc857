"""mmeformer.latency.predictor: sums of a table's entries."""
import random

import pytest

from mmeformer.latency import (LatencyTable, LatencyTableError, fit_correction,
                               latency_parts, predict_latency)
from mmeformer.models.backbones import ArchOutsideSpaceError


@pytest.fixture
def table(tiny_meta, hand_entries):
    return LatencyTable(tiny_meta, hand_entries)


def test_table_covers_the_tiny_space(table, hand_entries):
    assert table.complete
    assert sorted(b.key for b in table.blocks()) == sorted(hand_entries)


def test_sum_of_the_arch_blocks(table, hand_arch):
    # stem 1 + ffn0 2 + down1 4 + ffn1 8 + down2 16->24 32 + two ffn2 at
    # 24 (2 x 128) + down3 24->32 512 + the stage-3 attention block 2048 +
    # head 4096.
    assert predict_latency(hand_arch, table) == 6959
    assert latency_parts(hand_arch, table) == dict(
        stage0=3, stage1=12, stage2=288, stage3=6656)
    # Without the attention, stage 3's block is the plain FFN (1024).
    assert predict_latency(dict(hand_arch, num_attn_blocks=[0, 0]),
                           table) == 5935


def test_correction_is_applied(table, hand_arch):
    table.correction = dict(
        overhead=0.5,
        scales=dict(stage0=1., stage1=2., stage2=0.5, stage3=0.25))
    assert predict_latency(hand_arch, table) == 0.5 + 3 + 24 + 144 + 1664
    assert predict_latency(hand_arch, table, corrected=False) == 6959


def test_fitted_correction_reproduces_linear_measurements(table, tiny_space):
    rng = random.Random(0)
    archs = [tiny_space.sample(rng) for _ in range(8)]
    measured = [
        3. + 0.5 * latency_parts(a, table)['stage2'] +
        2. * latency_parts(a, table)['stage3'] for a in archs
    ]
    table.correction = fit_correction(table, archs, measured)
    for arch, ms in zip(archs, measured):
        assert predict_latency(arch, table) == pytest.approx(ms, rel=1e-6)


def test_arch_outside_the_space_names_the_block(table, hand_arch):
    with pytest.raises(ArchOutsideSpaceError, match='Stage 2 is 32 channels'):
        predict_latency(dict(hand_arch, channels=[8, 16, 32, 32]), table)
    with pytest.raises(
            ArchOutsideSpaceError, match='Block 0 of stage 1 has '
            'MLP ratio 4'):
        predict_latency(
            dict(hand_arch, mlp_ratios=[[2], [4], [2, 2], [2]]), table)
    with pytest.raises(
            ArchOutsideSpaceError,
            match="arch 's0' lies outside the latency table"):
        predict_latency('s0', table)


def test_missing_entry_is_named(table, hand_arch):
    del table.entries['attn3:32x2']
    with pytest.raises(
            LatencyTableError,
            match=r'no entry attn3:32x2 \(the attention block of '
            'stage 3 at width 32'):
        predict_latency(hand_arch, table)


@pytest.fixture
def v1_table(v1_meta, hand_entries, v1_entries):
    return LatencyTable(v1_meta, dict(hand_entries, **v1_entries))


def test_v1_sum_of_the_network_blocks(v1_table, hand_arch):
    assert v1_table.complete
    # V1-L1: stem 1 + 3 x 2 + down1 4 + 2 x 8 + down2 16 + 6 x 32 + down3
    # 64 + 3 pooling blocks x 128 + its one Meta3D block 256 + head 512.
    assert predict_latency('l1', v1_table) == 1451
    assert latency_parts('L1', v1_table) == dict(
        stage0=7, stage1=20, stage2=208, stage3=1216)
    # 31 blocks of L3 (with its 2 pooling and 4 Meta3D blocks in stage 3),
    # 43 of L7 (no pooling block in stage 3).
    assert predict_latency('l3', v1_table) == 31000
    assert predict_latency('l7', v1_table) == 43000
    # The V2 arches are summed as before.
    assert predict_latency(hand_arch, v1_table) == 6959
    v1_table.correction = dict(
        overhead=0.5,
        scales=dict(stage0=1., stage1=2., stage2=0.5, stage3=0.25))
    assert predict_latency('l1', v1_table) == 0.5 + 7 + 40 + 104 + 304


def test_v1_needs_a_table_with_the_v1_blocks(table, v1_table):
    with pytest.raises(
            LatencyTableError,
            match="arch 'l1' is a V1 network and the latency table holds "
            'no V1 blocks .* rerunning its build command with --v1'):
        predict_latency('l1', table)
    del v1_table.entries['v1.pool3:512x4']
    with pytest.raises(
            LatencyTableError,
            match=r'no entry v1.pool3:512x4 \(the V1 pooling block '
            r'\(Meta4D\) of stage 3 at width 512'):
        predict_latency('l3', v1_table)
    with pytest.raises(
            ArchOutsideSpaceError,
            match=r"unknown arch 'l5': .* 's0', 's1', 's2', 'l1', 'l3', "
            "'l7'"):
        predict_latency('l5', table)
