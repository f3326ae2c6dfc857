"""Classifiers."""
from .distillation import DistillationImageClassifier, distillation_loss

__all__ = ['DistillationImageClassifier', 'distillation_loss']
