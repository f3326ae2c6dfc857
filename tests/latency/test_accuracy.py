"""mmeformer.latency.accuracy: whole networks measured as the table was, and
how well predictions match them."""
import random

import pytest

from mmeformer.latency import (LatencyTable, LatencyTableError,
                               measure_networks, prediction_errors)


def test_measures_v2_archs_and_v1_networks(here_table, tiny_space):
    archs = [tiny_space.sample(random.Random(0)), tiny_space.largest(), 'L1']
    lines = []
    times = measure_networks(archs, here_table, group_size=2, log=lines.append)
    assert len(times) == 3 and all(ms > 0 for ms in times)
    assert lines == ['2/3 networks measured', '3/3 networks measured']


def test_refuses_before_measuring(here_table, tiny_meta, hand_entries,
                                  hand_arch):
    other = LatencyTable(tiny_meta, hand_entries)
    with pytest.raises(
            LatencyTableError,
            match="measured on test CPU, this machine is .*: measure "
            'networks where the table was made'):
        measure_networks([hand_arch], other)
    here_table.meta['with_v1'] = False
    with pytest.raises(LatencyTableError, match='holds no V1 blocks'):
        measure_networks([hand_arch, 'l7'], here_table)


def test_prediction_errors():
    stats = prediction_errors([1., 2., 3., 4.], [1., 3., 2., 5.])
    # Relative errors 0, -1/3, +1/2, -1/5; 5 of the 6 pairs in order.
    assert stats == pytest.approx(
        dict(
            median_error=(1 / 3 + 1 / 5) / 2,
            worst_error=0.5,
            mean_signed_error=(-1 / 3 + 1 / 2 - 1 / 5) / 4,
            kendall_tau=4 / 6))
