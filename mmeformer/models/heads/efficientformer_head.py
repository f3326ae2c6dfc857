"""Classification head of EfficientFormer V1 and V2 for MMPretrain."""
from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmpretrain.evaluation.metrics import Accuracy
from mmpretrain.models.heads import ClsHead
from mmpretrain.structures import DataSample

from mmeformer.registry import MODELS


@MODELS.register_module()
class EfficientFormerClsHead(ClsHead):
    """EfficientFormer classification head with a distillation head.

    Two linear classifiers, ``head`` and ``dist_head``, read the same pooled
    feature; at inference the logits are their mean, as in the official
    models. The official models train ``dist_head`` against a teacher's
    predictions (DeiT hard distillation), as
    :class:`~mmeformer.models.classifiers.DistillationImageClassifier`
    does with this head's :meth:`classifier_scores` and :meth:`label_loss`.
    Without a teacher, :meth:`loss` trains both classifiers on the ground
    truth, the loss being the mean of the two losses, so the averaged
    inference output stays meaningful. Hard labels and the soft ``gt_score``
    targets of Mixup / CutMix both work, through the configured ``loss`` as
    in :class:`mmpretrain.models.heads.ClsHead`.

    Modified from the `official repo
    <https://github.com/snap-research/EfficientFormer>`_ and mmpretrain's
    ``EfficientFormerClsHead``, which cannot train its distillation variant.

    Args:
        num_classes (int): Number of categories.
        in_channels (int): Channels of the pooled input feature.
        distillation (bool): Add ``dist_head``. Defaults to True.
        loss (dict): Classification loss config.
            Defaults to ``dict(type='CrossEntropyLoss', loss_weight=1.0)``.
        topk (int | tuple[int]): Top-k accuracy. Defaults to ``(1, )``.
        cal_acc (bool): Compute training accuracy (hard labels only).
            Defaults to False.
        init_cfg (dict, optional): Initialization config. Defaults to
            truncated normal (std 0.02) weights and zero biases, as in the
            official models.

    Example:
        >>> import torch
        >>> from mmeformer.models import EfficientFormerClsHead
        >>> head = EfficientFormerClsHead(num_classes=10, in_channels=448)
        >>> print(tuple(head((torch.rand(2, 448), )).shape))
        (2, 10)
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 distillation: bool = True,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 topk: Union[int, Tuple[int]] = (1, ),
                 cal_acc: bool = False,
                 init_cfg: Optional[dict] = dict(
                     type='TruncNormal', layer='Linear', std=0.02, bias=0.)):
        super().__init__(
            loss=loss, topk=topk, cal_acc=cal_acc, init_cfg=init_cfg)
        if num_classes <= 0:
            raise ValueError(
                f'num_classes must be a positive integer, got {num_classes}')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.distillation = distillation
        self.head = nn.Linear(in_channels, num_classes)
        self.dist_head = nn.Linear(in_channels,
                                   num_classes) if distillation else None

    def classifier_scores(self,
                          feats: Tuple[torch.Tensor]) -> List[torch.Tensor]:
        """Logits of ``head`` and, with distillation, of ``dist_head``."""
        pre_logits = self.pre_logits(feats)
        scores = [self.head(pre_logits)]
        if self.dist_head is not None:
            scores.append(self.dist_head(pre_logits))
        return scores

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Inference logits: the mean of the classifiers' logits."""
        scores = self.classifier_scores(feats)
        return sum(scores) / len(scores)

    @staticmethod
    def targets(data_samples: List[DataSample]) -> torch.Tensor:
        """The batch's ground truth: ``gt_score`` rows if the samples have
        them (after Mixup / CutMix), else the ``gt_label`` indices."""
        if 'gt_score' in data_samples[0]:
            return torch.stack([sample.gt_score for sample in data_samples])
        return torch.cat([sample.gt_label for sample in data_samples])

    def label_loss(self, score: torch.Tensor, target: torch.Tensor,
                   **kwargs) -> torch.Tensor:
        """The configured loss of one classifier's logits.

        Args:
            score (Tensor): Logits of shape ``(N, num_classes)``.
            target (Tensor): The ground truth, see :meth:`targets`.
            **kwargs: Passed to the loss module.

        Returns:
            Tensor: The loss, averaged over the batch.
        """
        return self.loss_module(
            score, target, avg_factor=score.size(0), **kwargs)

    def loss(self, feats: Tuple[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> dict:
        """Mean of the classifiers' losses against the ground truth.

        Args:
            feats (tuple[Tensor]): Pooled features; the last one is used.
            data_samples (list[DataSample]): Samples with ``gt_label`` or,
                after batch augmentation, ``gt_score``.
            **kwargs: Passed to the loss module.

        Returns:
            dict[str, Tensor]: ``loss`` and, with ``cal_acc``, accuracies.
        """
        scores = self.classifier_scores(feats)
        target = self.targets(data_samples)
        loss = sum(
            self.label_loss(score, target, **kwargs)
            for score in scores) / len(scores)
        losses = dict(loss=loss)
        if self.cal_acc:
            if target.ndim != 1:
                raise ValueError('cal_acc needs hard labels; disable it when '
                                 'batch augmentations such as Mixup are used')
            accuracy = Accuracy.calculate(
                sum(scores) / len(scores), target, topk=self.topk)
            losses.update({
                f'accuracy_top-{k}': a
                for k, a in zip(self.topk, accuracy)
            })
        return losses
