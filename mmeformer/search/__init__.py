"""Architecture search for EfficientFormerV2: supernet training by the
sandwich rule, subnet extraction and the fine-grained joint search of
arXiv 2212.08059 under a latency and a size budget.

It uses the models (the supernet) and, for predicted latency, a latency
table of :mod:`mmeformer.latency`; neither of them knows the search.
"""
from .actions import Action, candidate_actions
from .extract import extract_subnet, subnet_model_config, write_subnet
from .greedy import (BudgetError, GreedySearch, Measure, SearchStateError,
                     check_budget, pick_action)
from .mes import MobileEfficiencyScore
from .sandwich import SandwichImageClassifier, inplace_distillation_loss
from .scoring import SubnetScorer, preprocess_batches

__all__ = [
    'Action', 'candidate_actions', 'extract_subnet', 'subnet_model_config',
    'write_subnet', 'BudgetError', 'GreedySearch', 'Measure',
    'SearchStateError', 'check_budget', 'pick_action',
    'MobileEfficiencyScore', 'SandwichImageClassifier',
    'inplace_distillation_loss', 'SubnetScorer', 'preprocess_batches'
]
