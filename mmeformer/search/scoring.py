"""Accuracy of supernet subnets on a fixed subset of held-out data."""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.dist import all_gather_object, get_dist_info

from mmeformer.models.backbones.efficientformer_v2_supernet import \
    recalibrate_bn

__all__ = ['SubnetScorer', 'preprocess_batches']


def preprocess_batches(
        model: nn.Module, loader,
        num_batches: int) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """The first ``num_batches`` batches of ``loader``, preprocessed.

    Args:
        model (nn.Module): A classifier with a ``data_preprocessor``.
        loader (Iterable): An mmengine dataloader.
        num_batches (int): Batches to keep.

    Returns:
        list[tuple[Tensor, Tensor]]: ``(inputs, labels)`` pairs.
    """
    batches = []
    for data in loader:
        if len(batches) == num_batches:
            break
        data = model.data_preprocessor(data, False)
        labels = torch.cat(
            [sample.gt_label for sample in data['data_samples']])
        batches.append((data['inputs'], labels))
    return batches


class SubnetScorer:
    """Top-1 of subnets, each after recalibrating its BatchNorms.

    Args:
        model (nn.Module): A classifier on an
            :class:`~mmeformer.models.EfficientFormerV2Supernet` in eval
            mode (e.g. :class:`~mmeformer.search.SandwichImageClassifier`).
        calibration (Sequence): ``(inputs, labels)`` batches for the
            BatchNorm statistics (e.g. from the training split).
        scoring (Sequence): ``(inputs, labels)`` batches of held-out data
            that every subnet is scored on.
    """

    def __init__(self, model: nn.Module, calibration: Sequence,
                 scoring: Sequence) -> None:
        self.model = model
        self.calibration = calibration
        self.scoring = scoring

    @torch.no_grad()
    def score(self, arch: dict, recalibrate: bool = True) -> float:
        """Top-1 in % of ``arch`` on the scoring batches.

        Args:
            arch (dict): The arch.
            recalibrate (bool): Re-estimate the BatchNorm statistics first;
                False keeps the supernet's shared ones. Defaults to True.
        """
        self.model.backbone.set_subnet(arch)
        if recalibrate:
            recalibrate_bn(self.model,
                           [inputs for inputs, _ in self.calibration],
                           lambda model, inputs: model.extract_feat(inputs))
        self.model.eval()
        correct = total = 0
        for inputs, labels in self.scoring:
            logits = self.model(inputs, mode='tensor')
            correct += (logits.argmax(dim=1) == labels).sum().item()
            total += labels.numel()
        return 100. * correct / total

    def __call__(self, archs: List[dict]) -> List[float]:
        """Scores of ``archs``, spread over the processes when distributed:
        rank ``r`` of ``n`` scores ``archs[r::n]``, then all gather."""
        rank, world = get_dist_info()
        mine = {
            i: self.score(archs[i])
            for i in range(rank, len(archs), world)
        }
        if world > 1:
            merged = {}
            for part in all_gather_object(mine):
                merged.update(part)
            mine = merged
        return [mine[i] for i in range(len(archs))]
