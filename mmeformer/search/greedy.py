"""The fine-grained joint search of EfficientFormerV2 (arXiv 2212.08059,
Section 4): from the largest subnet, one action at a time, the one that
loses the least accuracy per gain in Mobile Efficiency Score, until the
latency and size budgets hold."""
from dataclasses import asdict, dataclass, field
from typing import Callable, List, Optional, Sequence

from mmeformer.models.backbones import EfficientFormerV2Space
from .actions import Action, candidate_actions
from .mes import MobileEfficiencyScore
from .state import SearchStateError, read_state, write_state

__all__ = [
    'BudgetError', 'BudgetedSearch', 'SearchStateError', 'GreedySearch',
    'Measure', 'check_budget', 'pick_action'
]


class BudgetError(ValueError):
    """A budget that no subnet of the space meets."""


@dataclass
class Measure:
    """What the search knows about one arch.

    Attributes:
        arch (dict): The arch.
        accuracy (float): Top-1 on the scoring subset, in %.
        latency_ms (float): Predicted latency, ms.
        params_m (float): Parameters, millions.
        mes (float): Mobile Efficiency Score.
        action (str): The action that led to it ('' for the start).
        candidates (list[dict]): Every candidate of the step that chose
            it: action, accuracy, latency_ms, params_m, mes.
        measured_ms (float, optional): Latency of the whole network,
            measured on the device, once its prediction met the budget.
    """
    arch: dict
    accuracy: float
    latency_ms: float
    params_m: float
    mes: float
    action: str = ''
    candidates: List[dict] = field(default_factory=list)
    measured_ms: Optional[float] = None


def check_budget(space: EfficientFormerV2Space, latency: Callable,
                 params: Callable, max_latency: Optional[float],
                 max_params: Optional[float]) -> None:
    """Refuse budgets that even the smallest subnet misses.

    Every action makes an arch smaller, so the search ends at best at the
    space's smallest arch.

    Raises:
        BudgetError: Naming the smallest reachable latency and size.
    """
    smallest = space.smallest()
    lat, size = latency(smallest), params(smallest)
    misses = []
    if max_latency is not None and lat > max_latency:
        misses.append(f'latency {max_latency:g} ms')
    if max_params is not None and size > max_params:
        misses.append(f'size {max_params:g} M parameters')
    if misses:
        raise BudgetError(
            f'No subnet of the space meets the {" and the ".join(misses)}: '
            f'the smallest reachable is {lat:.3f} ms and {size:.3f} M '
            'parameters (the smallest arch of the space); raise the budget, '
            'or search a space with smaller choices')


def pick_action(current: Measure, candidates: Sequence[Measure]) -> int:
    """The index of the candidate with the least accuracy drop per MES gain.

    Candidates that gain no MES are skipped. A candidate that loses no
    accuracy is free: the free candidate with the largest MES gain is taken
    before any that loses accuracy (the ratio alone would rank an accuracy
    gain higher the less MES it brings, so the search would crawl through
    the smallest steps the scoring noise favours). Ties go to the larger MES
    gain, then to the first candidate.

    Raises:
        ValueError: If no candidate gains MES.
    """
    best, best_key = None, None
    for index, cand in enumerate(candidates):
        gain = cand.mes - current.mes
        if gain <= 0:
            continue
        drop = current.accuracy - cand.accuracy
        # Free actions first, by MES gain; the others by drop per gain.
        key = (0., -gain) if drop <= 0 else (drop / gain, -gain)
        if best_key is None or key < best_key:
            best, best_key = index, key
    if best is None:
        raise ValueError('No action gains Mobile Efficiency Score: the '
                         'latency table does not see any of them faster '
                         'or smaller')
    return best


class BudgetedSearch:
    """What every search strategy shares: the space, how archs are scored,
    the budgets, the state file and the settings a resume must match.

    Args:
        space (EfficientFormerV2Space): The space.
        accuracy (callable): ``accuracy(archs) -> list[float]`` in %, for a
            list of archs (the caller spreads them over processes).
        latency (callable): ``latency(arch) -> ms`` (predicted).
        params (callable): ``params(arch) -> millions``.
        max_latency (float, optional): Latency budget, ms.
        max_params (float, optional): Size budget, millions.
        state_file (str, optional): Where the state goes (rank 0 writes).
            None keeps it in memory.
        mes (MobileEfficiencyScore, optional): The score. Defaults to the
            paper's (equal weights).
        settings (dict, optional): What else identifies the search (config,
            checkpoint, table), checked on resume.
        write (bool): Write the state file (False on ranks > 0).
            Defaults to True.
        log (callable, optional): Called with one line per step.
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
                 log: Optional[Callable[[str], None]] = None) -> None:
        if max_latency is None and max_params is None:
            raise BudgetError('Give a latency budget, a size budget or both')
        self.space = space
        self.accuracy = accuracy
        self.latency = latency
        self.params = params
        self.max_latency = max_latency
        self.max_params = max_params
        self.state_file = state_file
        self.mes = mes or MobileEfficiencyScore()
        self.settings = dict(
            settings or {},
            space=space.to_dict(),
            max_latency=max_latency,
            max_params=max_params,
            mes=asdict(self.mes))
        self.write = write
        self.log = log or (lambda line: None)

    def meets_budgets(self, latency_ms: float, params_m: float) -> bool:
        """Whether a latency and a size meet both budgets."""
        return ((self.max_latency is None or latency_ms <= self.max_latency)
                and (self.max_params is None or params_m <= self.max_params))

    def measure(self, archs: List[dict],
                actions: Sequence[str]) -> List[Measure]:
        """Score ``archs``: accuracy, latency, size, MES."""
        accuracies = self.accuracy(archs)
        out = []
        for arch, accuracy, action in zip(archs, accuracies, actions):
            lat, size = float(self.latency(arch)), float(self.params(arch))
            out.append(
                Measure(arch, float(accuracy), lat, size, self.mes(lat, size),
                        action))
        return out


class GreedySearch(BudgetedSearch):
    """The search loop, with its state in a JSON file after every step.

    A step scores every candidate action of the current arch (accuracy on
    the scoring subset after BatchNorm recalibration, predicted latency,
    parameters) and takes the one :func:`pick_action` picks. A search
    started again with the same settings continues after its last finished
    step; other settings are refused.

    With ``measured_latency``, the latency budget is met when measured: an
    arch whose predicted latency meets it is measured whole, and the search
    goes on while the measurement misses it (a prediction is a sum of
    blocks timed alone, a few per cent off the whole network).

    Args:
        *args, **kwargs: Those of :class:`BudgetedSearch`.
        measured_latency (callable, optional): ``measured_latency(arch) ->
            ms`` of the whole network on the device (the same on every
            process). None trusts the prediction. Defaults to None.
    """

    def __init__(self,
                 *args,
                 measured_latency: Optional[Callable[[dict], float]] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.measured_latency = measured_latency
        if measured_latency is not None and self.max_latency is not None:
            self.settings['measured_budget'] = True
        self.path: List[Measure] = []

    # -- state ---------------------------------------------------------------

    def load_state(self) -> bool:
        """Continue from the state file if there is one.

        Returns:
            bool: Whether steps were loaded.

        Raises:
            SearchStateError: If the file is of another search.
        """
        state = read_state(self.state_file, self.settings)
        if state is None:
            return False
        try:
            self.path = [Measure(**step) for step in state['path']]
        except (KeyError, TypeError) as e:
            raise SearchStateError(
                f'{self.state_file} is not a search state ({e}); remove it '
                'or use another --work-dir') from None
        return bool(self.path)

    def save_state(self) -> None:
        """Write the state file atomically (rank 0)."""
        if self.write:
            write_state(
                self.state_file,
                self.settings,
                path=[asdict(step) for step in self.path],
                done=self.done())

    # -- search ------------------------------------------------------------

    def within_budget(self, step: Measure) -> bool:
        """Whether ``step`` meets both budgets (the latency one as measured,
        with ``measured_latency``)."""
        if not self.meets_budgets(step.latency_ms, step.params_m):
            return False
        if 'measured_budget' not in self.settings:
            return True
        return (step.measured_ms is not None
                and step.measured_ms <= self.max_latency)

    def time_if_predicted_within(self, step: Measure) -> None:
        """With ``measured_latency``: time ``step`` whole, once, when its
        prediction meets the budgets (every process at the same point)."""
        if ('measured_budget' not in self.settings
                or step.measured_ms is not None
                or not self.meets_budgets(step.latency_ms, step.params_m)):
            return
        step.measured_ms = float(self.measured_latency(step.arch))
        missed = step.measured_ms > self.max_latency
        self.log(f'predicted {step.latency_ms:.3f} ms, measured '
                 f'{step.measured_ms:.3f} ms: '
                 f'{"over" if missed else "within"} the budget of '
                 f'{self.max_latency:g} ms' + (', going on' if missed else ''))

    def done(self) -> bool:
        """Whether the last step meets the budgets."""
        return bool(self.path) and self.within_budget(self.path[-1])

    def step(self) -> Measure:
        """Take one action; return the new arch's measure."""
        current = self.path[-1]
        actions: List[Action] = candidate_actions(self.space, current.arch)
        if not actions:
            raise BudgetError(
                'No subnet of the space meets the latency budget when '
                f'measured: the smallest, predicted {current.latency_ms:.3f}'
                f' ms, measured {current.measured_ms:.3f} ms (budget '
                f'{self.max_latency:g} ms); raise the budget, or search with '
                '--predicted-only')
        archs = [action.apply(current.arch) for action in actions]
        candidates = self.measure(archs, [str(a) for a in actions])
        chosen = candidates[pick_action(current, candidates)]
        chosen.candidates = [
            dict(
                action=c.action,
                accuracy=c.accuracy,
                latency_ms=c.latency_ms,
                params_m=c.params_m,
                mes=c.mes) for c in candidates
        ]
        self.path.append(chosen)
        self.time_if_predicted_within(chosen)
        self.save_state()
        return chosen

    def run(self, max_steps: Optional[int] = None) -> List[Measure]:
        """Search until the budgets hold (or ``max_steps`` more steps).

        Returns:
            list[Measure]: The whole path, the start first.
        """
        check_budget(self.space, self.latency, self.params, self.max_latency,
                     self.max_params)
        if not self.load_state():
            self.path = self.measure([self.space.largest()], [''])
            self.time_if_predicted_within(self.path[-1])
            self.save_state()
            self.log(self.describe(self.path[-1], 0))
        else:
            self.log(f'continuing the search after step {len(self.path) - 1}'
                     f' ({self.state_file})')
            if self.path[-1].measured_ms is None:
                # Killed before its measurement was saved.
                self.time_if_predicted_within(self.path[-1])
                self.save_state()
        steps = 0
        while not self.done() and (max_steps is None or steps < max_steps):
            self.step()
            steps += 1
            self.log(self.describe(self.path[-1], len(self.path) - 1))
        return self.path

    @staticmethod
    def describe(step: Measure, index: int) -> str:
        """One log line about a step."""
        return (f'step {index}: {step.action or "largest subnet"}; top-1 '
                f'{step.accuracy:.2f} %, {step.latency_ms:.3f} ms, '
                f'{step.params_m:.3f} M, MES {step.mes:.2f}')
