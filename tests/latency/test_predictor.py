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
