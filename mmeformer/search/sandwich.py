"""Supernet training by the sandwich rule with in-place distillation."""
import random
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper

from mmeformer.models.backbones import EfficientFormerV2Supernet
from mmeformer.models.backbones.efficientformer_v2_supernet import make_elastic
from mmeformer.models.classifiers import DistillationImageClassifier
from mmeformer.registry import MODELS
from mmeformer.utils import ConfigError

__all__ = ['SandwichImageClassifier', 'inplace_distillation_loss']


def inplace_distillation_loss(student_logits: torch.Tensor,
                              teacher_logits: torch.Tensor) -> torch.Tensor:
    """KL divergence from the teacher's soft prediction, per image.

    Args:
        student_logits (Tensor): ``(N, num_classes)``.
        teacher_logits (Tensor): The largest subnet's logits, detached.

    Returns:
        Tensor: A scalar, averaged over the batch.
    """
    return F.kl_div(
        F.log_softmax(student_logits, dim=1),
        F.log_softmax(teacher_logits, dim=1),
        reduction='batchmean',
        log_target=True)


@MODELS.register_module()
class SandwichImageClassifier(DistillationImageClassifier):
    """An image classifier on an EfficientFormerV2 supernet, trained by the
    sandwich rule.

    Each training step runs the largest subnet on the labels (the head's
    configured loss; with ``teacher``, the DeiT-style distillation of
    :class:`~mmeformer.models.DistillationImageClassifier` from that
    external teacher), then the smallest and ``num_random`` uniformly drawn
    subnets, each learning the largest one's soft prediction for the same
    batch (in-place distillation, as in BigNAS / AutoSlim and the
    EfficientFormerV2 supernet); the gradients of all of them accumulate
    and the optimizer steps once. The head is slimmable: its input is the
    last stage's width, whichever subnet runs. Outside training (``val``,
    ``test``, the search) the subnet set on the backbone runs, the largest
    unless changed.

    Random subnets come from Python's global random stream, which mmengine
    seeds (``randomness.seed``) and :class:`~mmeformer.RandomStateHook`
    saves with the checkpoints. Distributed, mmengine's DDP wrapper would
    run its own step (one forward of ``mode='loss'``), not this one: the
    configs set ``model_wrapper_cfg`` to
    :class:`~mmeformer.search.SandwichDistributedDataParallel`, which runs
    :meth:`sandwich_backward` and averages the gradients.

    Args:
        backbone (dict): An ``EfficientFormerV2Supernet`` config.
        num_random (int): Random subnets per step. Defaults to 2.
        **kwargs: :class:`~mmeformer.models.DistillationImageClassifier`'s
            other arguments (``neck``, ``head``, ``teacher``,
            ``data_preprocessor``...); without ``teacher``, those of
            :class:`mmpretrain.models.ImageClassifier`.
    """

    def __init__(self, backbone: dict, num_random: int = 2, **kwargs) -> None:
        super().__init__(backbone, **kwargs)
        if not isinstance(self.backbone, EfficientFormerV2Supernet):
            raise ConfigError(
                'SandwichImageClassifier trains a supernet: set '
                "model.backbone.type='mmeformer.EfficientFormerV2Supernet', "
                f'got {type(self.backbone).__name__}')
        if num_random < 0:
            raise ConfigError(
                f'model.num_random must be >= 0, got {num_random}')
        self.num_random = num_random
        make_elastic(self.head)
        #: The archs of the last training step, largest first.
        self.last_archs: List[dict] = []

    def sandwich_archs(self,
                       rng: Optional[random.Random] = None) -> List[dict]:
        """The largest, the smallest and ``num_random`` random archs."""
        space = self.backbone.space
        rng = rng or random
        return [space.largest(), space.smallest()
                ] + [space.sample(rng) for _ in range(self.num_random)]

    def sandwich_backward(self, data: dict, optim_wrapper: OptimWrapper,
                          archs: List[dict]) -> Dict[str, torch.Tensor]:
        """The backward passes of one sandwich step, without the update.

        The gradients of every subnet of ``archs`` accumulate in the
        parameters' ``grad``; afterwards the largest subnet is set again.

        Args:
            data (dict): A batch from the dataloader.
            optim_wrapper (OptimWrapper): The optimizer wrapper (its
                backward and mixed-precision context).
            archs (list[dict]): The largest arch (trained on the labels),
                then the students, as :meth:`sandwich_archs` gives them.

        Returns:
            dict[str, Tensor]: ``loss`` (of the largest subnet, as the
            head computes it, or ``loss_cls`` and ``loss_distill`` with a
            teacher) and ``loss_kd`` (the students' mean), for the log.
        """
        self.last_archs = archs
        with optim_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            inputs, samples = data['inputs'], data['data_samples']
            self.backbone.set_subnet(archs[0])
            feats = self.extract_feat(inputs)
            loss, log_vars = self.parse_losses(
                self.loss_by_feat(feats, inputs, samples))
            teacher = self.head(feats).detach()
        optim_wrapper.backward(loss)
        student_losses = []
        for arch in archs[1:]:
            with optim_wrapper.optim_context(self):
                self.backbone.set_subnet(arch)
                student = self.head(self.extract_feat(inputs))
                loss_kd = inplace_distillation_loss(student, teacher)
            optim_wrapper.backward(loss_kd)
            student_losses.append(loss_kd.detach())
        self.backbone.set_largest()
        if student_losses:
            log_vars['loss_kd'] = torch.stack(student_losses).mean()
        return log_vars

    def train_step(self, data: dict,
                   optim_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        """One sandwich step: four (or ``2 + num_random``) backward passes,
        one optimizer step.

        Args:
            data (dict): A batch from the dataloader.
            optim_wrapper (OptimWrapper): The optimizer wrapper.

        Returns:
            dict[str, Tensor]: See :meth:`sandwich_backward`.
        """
        log_vars = self.sandwich_backward(data, optim_wrapper,
                                          self.sandwich_archs())
        optim_wrapper.step()
        optim_wrapper.zero_grad()
        return log_vars
