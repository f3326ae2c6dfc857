"""An evolutionary search over the same space, the alternative to the greedy
search: a population of archs within the budgets, the most accurate ones
mutated and crossed over, generation after generation."""
import json
import random
from dataclasses import asdict
from typing import Callable, Dict, List, Optional

from mmeformer.models.backbones import EfficientFormerV2Space
from .greedy import BudgetedSearch, BudgetError, Measure, check_budget
from .mes import MobileEfficiencyScore
from .state import SearchStateError, read_state, write_state

__all__ = ['EvolutionSearch', 'crossover', 'mutate']


def _key(arch: dict) -> str:
    return json.dumps(arch, sort_keys=True)


def _stage(arch: dict, stage: int) -> dict:
    """One stage's choices: width, blocks, their ratios, attention."""
    out = dict(
        channels=arch['channels'][stage],
        depths=arch['depths'][stage],
        mlp_ratios=list(arch['mlp_ratios'][stage]))
    if stage >= 2:
        out['num_attn_blocks'] = arch['num_attn_blocks'][stage - 2]
    return out


def _join(stages: List[dict]) -> dict:
    return dict(
        depths=[s['depths'] for s in stages],
        channels=[s['channels'] for s in stages],
        num_attn_blocks=[
            min(s['num_attn_blocks'], s['depths']) for s in stages[2:]
        ],
        mlp_ratios=[s['mlp_ratios'] for s in stages])


def mutate(space: EfficientFormerV2Space, arch: dict, prob: float,
           rng: random.Random) -> dict:
    """``arch`` with each choice drawn afresh with probability ``prob``.

    The choices are each stage's width, depth and attention count and each
    block's MLP ratio; blocks added by a deeper stage get drawn ratios, and
    an attention count is capped by its stage's depth.

    Args:
        space (EfficientFormerV2Space): The space of ``arch``.
        arch (dict): A normalised arch of the space.
        prob (float): Probability of each choice to change.
        rng (random.Random): The random stream.

    Returns:
        dict: An arch of the space (possibly ``arch`` itself).
    """
    stages = []
    for i in range(space.num_stages):
        stage = _stage(arch, i)
        if rng.random() < prob:
            stage['channels'] = rng.choice(space.widths[i])
        if rng.random() < prob:
            stage['depths'] = rng.randint(space.min_depths[i],
                                          space.max_depths[i])
        ratios = stage['mlp_ratios'][:stage['depths']]
        ratios += [
            rng.choice(space.mlp_ratios)
            for _ in range(stage['depths'] - len(ratios))
        ]
        stage['mlp_ratios'] = [
            rng.choice(space.mlp_ratios) if rng.random() < prob else r
            for r in ratios
        ]
        if i >= 2 and rng.random() < prob:
            stage['num_attn_blocks'] = rng.randint(
                0, space.max_attn_blocks[i - 2])
        stages.append(stage)
    return space.check(_join(stages))


def crossover(space: EfficientFormerV2Space, first: dict, second: dict,
              rng: random.Random) -> dict:
    """Each stage (all its choices together) from one parent or the other.

    Args:
        space (EfficientFormerV2Space): The space of both parents.
        first (dict): A normalised arch of the space.
        second (dict): Another one.
        rng (random.Random): The random stream.

    Returns:
        dict: An arch of the space.
    """
    return space.check(
        _join([
            _stage(rng.choice((first, second)), i)
            for i in range(space.num_stages)
        ]))


class EvolutionSearch(BudgetedSearch):
    """The evolutionary search, with its state in a JSON file after every
    generation.

    Generation 0 draws ``population`` archs of the space uniformly; each
    later one makes ``population`` new archs from the ``parents`` most
    accurate archs scored so far, half by :func:`mutate` and half by
    :func:`crossover`. Only archs within both budgets and never scored
    before enter a generation (drawn again up to ``max_tries`` times per
    generation). Every arch is scored as the greedy search scores its
    candidates (``accuracy``, predicted latency, parameters); the found
    arch is the most accurate one of all, its MES breaking ties. Each
    generation draws from its own stream, seeded by ``seed`` and its index,
    so a search continued from its state file makes what an uninterrupted
    one makes.

    Args:
        (the first eleven): Those of :class:`BudgetedSearch`.
        generations (int): Generations, the first included. Defaults to 10.
        population (int): Archs per generation. Defaults to 20.
        parents (int): Most accurate archs that the next generation comes
            from. Defaults to 5.
        mutation_prob (float): See :func:`mutate`. Defaults to 0.1.
        seed (int): Seed of the draws. Defaults to 0.
        max_tries (int): Draws per generation before it is refused.
            Defaults to 1000.
    """

    def __init__(self,
                 space: EfficientFormerV2Space,
                 accuracy: Callable[[List[dict]], List[float]],
                 latency: Callable[[dict], float],
                 params: Callable[[dict], float],
                 max_latency: Optional[float] = None,
                 max_params: Optional[float] = None,
                 state_file: Optional[str] = None,
                 mes: Optional[MobileEfficiencyScore] = None,
                 settings: Optional[dict] = None,
                 write: bool = True,
                 log: Optional[Callable[[str], None]] = None,
                 generations: int = 10,
                 population: int = 20,
                 parents: int = 5,
                 mutation_prob: float = 0.1,
                 seed: int = 0,
                 max_tries: int = 1000) -> None:
        if min(generations, population, parents, max_tries) < 1:
            raise ValueError(
                'generations, population, parents and max_tries must be >= '
                f'1, got {generations}, {population}, {parents} and '
                f'{max_tries}')
        if not 0. <= mutation_prob <= 1.:
            raise ValueError(
                f'mutation_prob must be in [0, 1], got {mutation_prob}')
        super().__init__(
            space, accuracy, latency, params, max_latency, max_params,
            state_file, mes,
            dict(
                settings or {},
                strategy='evolution',
                evolution=dict(
                    generations=generations,
                    population=population,
                    parents=parents,
                    mutation_prob=mutation_prob,
                    seed=seed,
                    max_tries=max_tries)), write, log)
        self.generations = generations
        self.population = population
        self.parents = parents
        self.mutation_prob = mutation_prob
        self.seed = seed
        self.max_tries = max_tries
        #: Every scored arch, generation by generation.
        self.history: List[List[Measure]] = []

    # -- state -------------------------------------------------------------

    def load_state(self) -> bool:
        """Continue from the state file if there is one.

        Returns:
            bool: Whether generations were loaded.

        Raises:
            SearchStateError: If the file is of another search.
        """
        state = read_state(self.state_file, self.settings)
        if state is None:
            return False
        try:
            self.history = [[Measure(**m) for m in generation]
                            for generation in state['generations']]
        except (KeyError, TypeError) as e:
            raise SearchStateError(
                f'{self.state_file} is not a search state ({e}); remove it '
                'or use another --work-dir') from None
        return bool(self.history)

    def save_state(self) -> None:
        """Write the state file atomically (rank 0)."""
        if self.write:
            write_state(
                self.state_file,
                self.settings,
                generations=[[asdict(m) for m in generation]
                             for generation in self.history],
                path=[asdict(m) for m in self.path],
                done=self.done())

    # -- search ------------------------------------------------------------

    def within_budget(self, arch: dict) -> bool:
        """Whether ``arch`` meets both budgets."""
        return self.meets_budgets(self.latency(arch), self.params(arch))

    def done(self) -> bool:
        """Whether every generation has been scored."""
        return len(self.history) >= self.generations

    @property
    def scored(self) -> List[Measure]:
        """Every scored arch, in order."""
        return [m for generation in self.history for m in generation]

    def ranked(self) -> List[Measure]:
        """The scored archs, most accurate first (higher MES first among
        equals; the earlier first among those)."""
        return sorted(self.scored, key=lambda m: (-m.accuracy, -m.mes))

    @property
    def path(self) -> List[Measure]:
        """The best arch after each generation; the last is the found
        one."""
        path, best = [], None
        for index, generation in enumerate(self.history):
            for m in generation:
                if best is None or (m.accuracy, m.mes) > (best.accuracy,
                                                          best.mes):
                    best = m
            path.append(
                Measure(best.arch, best.accuracy, best.latency_ms,
                        best.params_m, best.mes,
                        f'best after generation {index}'))
        return path

    def offspring(self, index: int) -> List[dict]:
        """The new archs of generation ``index``, within the budgets."""
        rng = random.Random(f'{self.seed}:{index}')
        seen = {_key(m.arch) for m in self.scored}
        parents = [m.arch for m in self.ranked()[:self.parents]]
        out: Dict[str, dict] = {}
        for _ in range(self.max_tries):
            if len(out) == self.population:
                break
            if index == 0:
                arch = self.space.check(self.space.sample(rng))
            elif len(out) % 2 == 0:
                arch = mutate(self.space, rng.choice(parents),
                              self.mutation_prob, rng)
            else:
                arch = crossover(self.space, rng.choice(parents),
                                 rng.choice(parents), rng)
            key = _key(arch)
            if key in seen or key in out or not self.within_budget(arch):
                continue
            out[key] = arch
        if not out:
            raise BudgetError(
                f'Generation {index} found no new arch within the budgets in '
                f'{self.max_tries} draws; raise the budget or '
                'search.evolution.max_tries, or use the greedy search')
        return list(out.values())

    def run(self, max_steps: Optional[int] = None) -> List[Measure]:
        """Run the generations not yet scored (at most ``max_steps``).

        Returns:
            list[Measure]: :attr:`path`.
        """
        check_budget(self.space, self.latency, self.params, self.max_latency,
                     self.max_params)
        if self.load_state():
            self.log(f'continuing the search after generation '
                     f'{len(self.history) - 1} ({self.state_file})')
        steps = 0
        while not self.done() and (max_steps is None or steps < max_steps):
            index = len(self.history)
            archs = self.offspring(index)
            self.history.append(
                self.measure(archs, [f'generation {index}'] * len(archs)))
            self.save_state()
            steps += 1
            best = self.path[-1]
            self.log(f'generation {index}: {len(archs)} archs; best top-1 '
                     f'{best.accuracy:.2f} %, {best.latency_ms:.3f} ms, '
                     f'{best.params_m:.3f} M, MES {best.mes:.2f}')
        return self.path
