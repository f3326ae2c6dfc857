"""Supernet training by the sandwich rule with in-place distillation."""
import random
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from mmpretrain.models import ImageClassifier

from mmeformer.models.backbones import EfficientFormerV2Supernet
from mmeformer.models.backbones.efficientformer_v2_supernet import \
    make_elastic
from mmeformer.registry import MODELS
from mmeformer.runtime.errors import ConfigError

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
class SandwichImageClassifier(ImageClassifier):
    """An image classifier on an EfficientFormerV2 supernet, trained by the
    sandwich rule.

    Each training step runs the largest subnet on the labels (the head's
    configured loss), then the smallest and ``num_random`` uniformly drawn
    subnets, each learning the largest one's soft prediction for the same
    batch (in-place distillation, as in BigNAS / AutoSlim and the
    EfficientFormerV2 supernet); the gradients of all of them accumulate
    and the optimizer steps once. The head is slimmable: its input is the
    last stage's width, whichever subnet runs. Outside training (``val``,
    ``test``, the search) the subnet set on the backbone runs, the largest
    unless changed.

    Random subnets come from Python's global random stream, which mmengine
    seeds (``randomness.seed``) and :class:`~mmeformer.RandomStateHook`
    saves with the checkpoints. One process only: mmengine's DDP wrapper
    calls the model's forward, not this ``train_step``.

    Args:
        backbone (dict): An ``EfficientFormerV2Supernet`` config.
        num_random (int): Random subnets per step. Defaults to 2.
        **kwargs: :class:`mmpretrain.models.ImageClassifier`'s other
            arguments (``neck``, ``head``, ``data_preprocessor``...).
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

    def sandwich_archs(self, rng: Optional[random.Random] = None
                       ) -> List[dict]:
        """The largest, the smallest and ``num_random`` random archs."""
        space = self.backbone.space
        rng = rng or random
        return [space.largest(), space.smallest()
                ] + [space.sample(rng) for _ in range(self.num_random)]

    def train_step(self, data: dict,
                   optim_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        """One sandwich step: four (or ``2 + num_random``) backward passes,
        one optimizer step.

        Args:
            data (dict): A batch from the dataloader.
            optim_wrapper (OptimWrapper): The optimizer wrapper.

        Returns:
            dict[str, Tensor]: ``loss`` (of the largest subnet, as the
            head computes it) and ``loss_kd`` (the students' mean), for
            the log.
        """
        archs = self.sandwich_archs()
        self.last_archs = archs
        log_vars = {}
        with optim_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            inputs, samples = data['inputs'], data['data_samples']
            self.backbone.set_subnet(archs[0])
            feats = self.extract_feat(inputs)
            loss, log_vars = self.parse_losses(self.head.loss(feats, samples))
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
        optim_wrapper.step()
        optim_wrapper.zero_grad()
        self.backbone.set_largest()
        if student_losses:
            log_vars['loss_kd'] = torch.stack(student_losses).mean()
        return log_vars
