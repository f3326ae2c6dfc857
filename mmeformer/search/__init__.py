"""Architecture search for EfficientFormerV2: supernet training by the
sandwich rule (in one process or several), subnet extraction and the
fine-grained joint search of arXiv 2212.08059 (or an evolutionary search
over the same space) under a latency and a size budget.

It uses the models (the supernet) and, for predicted latency, a latency
table of :mod:`mmeformer.latency`; neither of them knows the search.
"""
from .actions import Action, candidate_actions
from .evolution import EvolutionSearch, crossover, mutate
from .extract import extract_subnet, subnet_model_config, write_subnet
from .greedy import (BudgetedSearch, BudgetError, GreedySearch, Measure,
                     check_budget, pick_action)
from .mes import MobileEfficiencyScore
from .sandwich import SandwichImageClassifier, inplace_distillation_loss
from .sandwich_ddp import SandwichDistributedDataParallel
from .scoring import SubnetScorer, preprocess_batches
from .state import SearchStateError

__all__ = [
    'Action', 'candidate_actions', 'EvolutionSearch', 'crossover', 'mutate',
    'extract_subnet', 'subnet_model_config', 'write_subnet', 'BudgetError',
    'BudgetedSearch', 'GreedySearch', 'Measure', 'SearchStateError',
    'check_budget', 'pick_action', 'MobileEfficiencyScore',
    'SandwichImageClassifier', 'inplace_distillation_loss',
    'SandwichDistributedDataParallel', 'SubnetScorer', 'preprocess_batches'
]
