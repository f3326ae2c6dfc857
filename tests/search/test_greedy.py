"""The greedy search: the pick by accuracy drop per MES gain, resuming from
the state file, and budgets or states that are refused."""
import json

import pytest
import torch

from mmeformer.models.backbones import EfficientFormerV2Space
from mmeformer.search import (BudgetError, GreedySearch, MobileEfficiencyScore,
                              SearchStateError, SubnetScorer,
                              candidate_actions)

#: One width step in stage 3, one block to drop in stage 2, one attention
#: block in stages 2 and 3, two MLP ratios: nine actions from the largest.
SPACE = EfficientFormerV2Space(
    widths=[[8], [16], [24], [32, 48]],
    min_depths=[1, 1, 1, 1],
    max_depths=[1, 1, 2, 1],
    max_attn_blocks=[1, 1],
    mlp_ratios=[2, 4])

#: Hand-made (latency ms, params M, top-1 %) of the largest arch and of the
#: arch after each first action.
LARGEST = (10., 4., 80.)
AFTER = {
    'width stage 3: 48 -> 32': (8., 3., 76.),
    'depth stage 2: 2 -> 1': (9., 3.5, 79.),
    'attn stage 2: 1 -> 0': (9.9, 3.95, 79.5),
    'attn stage 3: 1 -> 0': (9.5, 3.9, 79.8),
    'mlp stage 0 block 0: 4 -> 2': (9.99, 3.999, 79.95),
    'mlp stage 1 block 0: 4 -> 2': (10., 4., 81.),
    'mlp stage 2 block 0: 4 -> 2': (9.9, 3.95, 79.5),
    'mlp stage 2 block 1: 4 -> 2': (9.8, 3.8, 79.9),
    'mlp stage 3 block 0: 4 -> 2': (9.9, 3.95, 79.5),
}
# MES = 100 / sqrt(latency * params); drop / gain, by hand:
#   largest                   MES 15.811
#   width stage 3       20.412, gain 4.601, drop 4.00  -> 0.869
#   depth stage 2       17.817, gain 2.006, drop 1.00  -> 0.499
#   attn stage 3        16.429, gain 0.618, drop 0.20  -> 0.324
#   mlp stage 2 block 1 16.387, gain 0.576, drop 0.10  -> 0.174  <- smallest
#   mlp stage 0 block 0 15.821, gain 0.010, drop 0.05  -> 5.0
#   mlp stage 1 block 0 no gain: skipped although it gains accuracy
#   the others          15.991, gain 0.180, drop 0.50  -> 2.78
EXPECTED = 'mlp stage 2 block 1: 4 -> 2'


class HandTable:
    """The numbers above for the largest arch and its neighbours; every
    further action takes 1 ms, 0.2 M and 1 % off."""

    def __init__(self):
        self.scored = []

    def lookup(self, arch):
        largest = SPACE.largest()
        if arch == largest:
            return LARGEST
        for action in candidate_actions(SPACE, largest):
            if action.apply(largest) == arch:
                return AFTER[str(action)]
        steps = self.steps_from_largest(arch)
        return 10. - steps, 4. - 0.2 * steps, 80. - steps

    @staticmethod
    def steps_from_largest(arch):
        largest = SPACE.largest()
        return (sum(a != b
                    for a, b in zip(arch['channels'], largest['channels'])) +
                sum(largest['depths']) - sum(arch['depths']) +
                sum(largest['num_attn_blocks']) -
                sum(arch['num_attn_blocks']) +
                sum(r == 2. for stage in arch['mlp_ratios'] for r in stage))

    def accuracy(self, archs):
        self.scored += archs
        return [self.lookup(arch)[2] for arch in archs]

    def latency(self, arch):
        return self.lookup(arch)[0]

    def params(self, arch):
        return self.lookup(arch)[1]


def search(table, state_file=None, **kwargs):
    kwargs.setdefault('max_latency', 9.85)
    return GreedySearch(
        SPACE,
        table.accuracy,
        table.latency,
        table.params,
        state_file=state_file,
        settings=dict(config='hand.py'),
        **kwargs)


def test_a_step_takes_the_least_accuracy_drop_per_mes_gain():
    assert MobileEfficiencyScore()(*LARGEST[:2]) == pytest.approx(15.811, 1e-4)
    path = search(HandTable()).run()
    assert [step.action for step in path] == ['', EXPECTED]
    assert len(path[1].candidates) == len(AFTER)
    assert path[1].latency_ms == 9.8


def test_an_action_that_loses_no_accuracy_is_taken_by_its_mes_gain():
    """Free actions (no accuracy drop) go first, the one of the largest MES
    gain among them, whatever accuracy they gain; ties of drop per gain go to
    the larger gain."""
    from mmeformer.search import Measure, pick_action

    def measure(accuracy, mes):
        return Measure({}, accuracy, 1., 1., mes)

    current = measure(50., 10.)
    candidates = [
        measure(49.9, 20.),  # drop 0.1 per gain 10: 0.01
        measure(51., 10.01),  # gains accuracy, tiny MES gain
        measure(50., 13.),  # free, gain 3  <- picked
        measure(50.5, 12.),  # gains accuracy, gain 2
        measure(52., 9.),  # no MES gain: skipped
    ]
    assert pick_action(current, candidates) == 2
    # Without free actions, the smallest ratio; equal ratios: larger gain.
    assert pick_action(current, [candidates[0], measure(49.8, 30.)]) == 1
    assert pick_action(current, [measure(49., 12.), measure(49.5, 11.)]) == 0


def test_a_killed_search_continues_after_its_last_step(tmp_path):
    state_file = str(tmp_path / 'state.json')
    first = HandTable()
    search(first, state_file, max_latency=7.5).run(max_steps=1)
    assert len(json.load(open(state_file))['path']) == 2

    again = HandTable()
    path = search(again, state_file, max_latency=7.5).run()
    assert path[1].action == EXPECTED
    assert SPACE.largest() not in again.scored
    assert path[-1].latency_ms <= 7.5 < path[-2].latency_ms
    assert json.load(open(state_file))['done'] is True

    with pytest.raises(SearchStateError, match='max_latency'):
        search(HandTable(), state_file, max_latency=7.).run()


def test_the_latency_budget_is_met_when_measured(tmp_path):
    """An arch whose prediction meets the budget is measured whole; while
    it is slower the search goes on. Measurements are kept in the state, and
    a continued search does not measure again."""
    state_file = str(tmp_path / 'state.json')
    measured = []

    def whole_network(arch):  # 1.1 ms over every prediction
        measured.append(arch)
        return HandTable().latency(arch) + 1.1

    path = search(
        HandTable(),
        state_file,
        max_latency=7.5,
        measured_latency=whole_network).run()
    predicted_only = search(HandTable(), max_latency=7.5).run()
    assert len(path) > len(predicted_only)
    assert path[len(predicted_only) - 1].latency_ms <= 7.5
    # Every arch predicted within the budget was measured, the last one
    # met it measured; those before it did not.
    timed = [step for step in path if step.measured_ms is not None]
    assert [step.arch for step in timed] == measured
    assert all(step.measured_ms > 7.5 for step in timed[:-1])
    assert timed[-1] is path[-1] and path[-1].measured_ms <= 7.5
    state = json.load(open(state_file))
    assert state['done'] is True
    assert state['path'][-1]['measured_ms'] == path[-1].measured_ms

    again = search(
        HandTable(),
        state_file,
        max_latency=7.5,
        measured_latency=whole_network).run()
    assert [s.measured_ms for s in again] == [s.measured_ms for s in path]
    assert len(measured) == len(timed)
    # A search that trusts the prediction is another search.
    with pytest.raises(SearchStateError, match='measured_budget'):
        search(HandTable(), state_file, max_latency=7.5).run()
    # No subnet fast enough when measured: named at the smallest.
    with pytest.raises(
            BudgetError,
            match='when measured: the smallest, '
            r'predicted 2.000 ms, measured 102.000 ms'):
        search(
            HandTable(),
            max_latency=7.5,
            measured_latency=lambda arch: HandTable().latency(arch) + 100).run(
            )


def test_a_budget_below_the_smallest_subnet_is_refused_before_scoring():
    table = HandTable()
    smallest = table.latency(SPACE.smallest())
    with pytest.raises(
            BudgetError, match=f'smallest reachable is '
            f'{smallest:.3f} ms'):
        search(table, max_latency=smallest - 0.1).run()
    assert table.scored == []


def test_a_step_on_a_tiny_supernet_follows_the_mes_ranking(
        build_supernet_classifier):
    """Real accuracies (BatchNorm recalibrated, scored on fixed data) with
    hand latencies: the step takes the free candidate (no accuracy lost)
    of the largest MES gain if there is one, else the smallest ratio."""
    model = build_supernet_classifier().eval()
    space = model.backbone.space
    generator = torch.Generator().manual_seed(0)
    data = [(torch.randn(8, 3, 33, 33, generator=generator),
             torch.randint(0, 4, (8, ), generator=generator))
            for _ in range(2)]
    scorer = SubnetScorer(model, data[:1], data[1:])

    def latency(arch):
        return 1. + sum(
            c * d for c, d in zip(arch['channels'], arch['depths'])) / 100

    def params(arch):
        return 0.1 + sum(
            r * c for c, stage in zip(arch['channels'], arch['mlp_ratios'])
            for r in stage) / 1000

    searcher = GreedySearch(
        space, scorer, latency, params, max_latency=1e9, max_params=1e9)
    searcher.path = searcher.measure([space.largest()], [''])
    chosen = searcher.step()
    start = searcher.path[0]
    base = 100 / (latency(start.arch) * params(start.arch))**0.5
    ratios, free = {}, {}
    for cand in chosen.candidates:
        arch = next(
            a.apply(start.arch) for a in candidate_actions(space, start.arch)
            if str(a) == cand['action'])
        mes = 100 / (latency(arch) * params(arch))**0.5
        drop = start.accuracy - cand['accuracy']
        if mes > base and drop <= 0:
            free[cand['action']] = mes - base
        elif mes > base:
            ratios[cand['action']] = drop / (mes - base)
    assert free or ratios
    if free:
        assert chosen.action == max(free, key=free.get)
    else:
        assert chosen.action == min(ratios, key=ratios.get)
