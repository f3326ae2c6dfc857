"""The evolutionary search: archs of the space within the budgets, each
scored once, the most accurate found, resumable per generation."""
import json
import random

import pytest

from mmeformer.models.backbones import EfficientFormerV2Space
from mmeformer.search import (BudgetError, EvolutionSearch, SearchStateError,
                              crossover, mutate)


@pytest.fixture
def space(tiny_space):
    return EfficientFormerV2Space.from_dict(tiny_space)


def latency(arch):
    return 1. + sum(c * d for c, d in zip(arch['channels'], arch['depths'])
                    ) / 100 + 0.1 * sum(arch['num_attn_blocks'])


def params(arch):
    return 0.1 + sum(r * c
                     for c, stage in zip(arch['channels'], arch['mlp_ratios'])
                     for r in stage) / 1000


def top1(arch):
    """Grows with width, depth and attention."""
    return (sum(arch['channels']) / 4 + 3 * sum(arch['depths']) +
            2 * sum(arch['num_attn_blocks']))


class HandScores:
    """:func:`top1` of the archs; the archs asked for, in order."""

    def __init__(self):
        self.asked = []

    def __call__(self, archs):
        self.asked += archs
        return [top1(arch) for arch in archs]


def search(space, scores, state_file=None, **kwargs):
    kwargs.setdefault('max_latency', 2.)
    return EvolutionSearch(
        space,
        scores,
        latency,
        params,
        state_file=state_file,
        settings=dict(config='hand.py'),
        generations=4,
        population=6,
        parents=3,
        mutation_prob=0.3,
        **kwargs)


def test_mutation_and_crossover_stay_in_the_space(space):
    rng = random.Random(0)
    archs = [space.check(space.sample(rng)) for _ in range(30)]
    for first, second in zip(archs, archs[1:]):
        assert space.contains(mutate(space, first, 0.5, rng))
        child = crossover(space, first, second, rng)
        assert space.contains(child)
        for stage in range(4):
            assert child['channels'][stage] in (first['channels'][stage],
                                                second['channels'][stage])
        assert mutate(space, first, 0., rng) == first
        assert crossover(space, first, first, rng) == first
    changed = sum(mutate(space, a, 0.5, rng) != a for a in archs)
    assert changed > len(archs) // 2


def test_the_most_accurate_arch_within_the_budget_is_found(space):
    scores = HandScores()
    path = search(space, scores).run()
    keys = [json.dumps(a, sort_keys=True) for a in scores.asked]
    assert len(keys) == len(set(keys)), 'each arch is scored once'
    assert all(latency(a) <= 2. for a in scores.asked)
    assert len(path) == 4
    assert path[-1].accuracy == max(map(top1, scores.asked))
    assert path[-1].latency_ms <= 2.
    # The best so far never gets worse.
    assert [p.accuracy for p in path] == sorted(p.accuracy for p in path)
    # The later generations come from the best archs: better on average
    # than the uniform first one.
    first = map(top1, scores.asked[:6])
    later = map(top1, scores.asked[-6:])
    assert sum(later) > sum(first)


def test_a_killed_search_continues_with_what_it_would_have_made(
        space, tmp_path):
    whole = HandScores()
    expected = search(space, whole).run()

    state_file = str(tmp_path / 'state.json')
    first = HandScores()
    search(space, first, state_file).run(max_steps=2)
    assert len(json.load(open(state_file))['generations']) == 2
    again = HandScores()
    path = search(space, again, state_file).run()
    assert first.asked + again.asked == whole.asked
    assert [p.arch for p in path] == [p.arch for p in expected]
    assert json.load(open(state_file))['done'] is True

    with pytest.raises(SearchStateError, match='max_latency'):
        search(space, HandScores(), state_file, max_latency=1.9).run()


def test_budgets_no_drawn_arch_meets_are_refused(space):
    smallest = space.smallest()
    with pytest.raises(BudgetError, match='smallest reachable'):
        search(space, HandScores(), max_latency=latency(smallest) - 0.01).run()
    # Only the smallest arch meets both, and 200 uniform draws miss it.
    scores = HandScores()
    with pytest.raises(BudgetError, match='Generation 0 found no new arch'):
        search(
            space,
            scores,
            max_latency=latency(smallest),
            max_params=params(smallest),
            max_tries=200).run()
    assert scores.asked == []
