"""Training with a teacher, as the official EfficientFormer models were."""
import os.path as osp
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from mmengine.runner import CheckpointLoader
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmpretrain.structures import DataSample

from mmeformer.registry import MODELS
from mmeformer.utils import (CHECKPOINT_HINTS, CheckpointError, ConfigError,
                             MissingResourceError)
from ..heads import EfficientFormerClsHead

__all__ = ['DistillationImageClassifier', 'distillation_loss']

DISTILLATION_TYPES = ('hard', 'soft')
TEACHER_CHECKPOINT_KEY = 'model.teacher.init_cfg.checkpoint'


def distillation_loss(student_logits: torch.Tensor,
                      teacher_logits: torch.Tensor,
                      distillation_type: str = 'hard',
                      tau: float = 1.0) -> torch.Tensor:
    """The distillation term of DeiT's loss, as the official models use it.

    Args:
        student_logits (Tensor): Logits of the distillation classifier,
            ``(N, num_classes)``.
        teacher_logits (Tensor): The teacher's logits for the same inputs.
        distillation_type (str): ``'hard'``: cross entropy against the
            teacher's top-1 class; ``'soft'``: KL divergence between the
            distributions at temperature ``tau``, times ``tau ** 2``, divided
            by the number of logits. Defaults to 'hard'.
        tau (float): Temperature of the soft type. Defaults to 1.0.

    Returns:
        Tensor: The loss, a scalar.
    """
    if distillation_type == 'hard':
        return F.cross_entropy(student_logits, teacher_logits.argmax(dim=1))
    return F.kl_div(
        F.log_softmax(student_logits / tau, dim=1),
        F.log_softmax(teacher_logits / tau, dim=1),
        reduction='sum',
        log_target=True) * (tau * tau) / student_logits.numel()


@MODELS.register_module()
class DistillationImageClassifier(ImageClassifier):
    """An image classifier whose ``dist_head`` learns from a teacher.

    The DeiT-style distillation of the official EfficientFormer training:
    with ``alpha`` the distillation weight, the loss is ``(1 - alpha) *
    base + alpha * distill``, where ``base`` is the head's configured loss
    (label-smoothed soft-target cross entropy with Mixup / CutMix) of the
    ``head`` logits against the mixed labels and ``distill`` is
    :func:`distillation_loss` of the ``dist_head`` logits against the
    teacher's logits for the same, already mixed, batch (batch
    augmentations run in the data preprocessor, before :meth:`loss`). Both
    terms are returned (``loss_cls`` and ``loss_distill``, weighted) and
    summed by the model's ``parse_losses``. Inference is the plain
    classifier's: the mean of both heads' logits. Without ``teacher`` the
    model is exactly an :class:`mmpretrain.models.ImageClassifier`.

    Why the teacher lives outside the module tree: it is held as a plain
    attribute, not a submodule, so it is not in ``state_dict()`` (a trained
    checkpoint loads strictly into the classifier without a teacher, with
    no warning), not in ``parameters()`` (the optimizer, gradient clipping
    and DDP never see it), untouched by ``model.train()`` (it stays in eval
    mode: frozen BatchNorm statistics) and by the Runner's SyncBN
    conversion. It runs under ``torch.no_grad()``.

    Why it is built in :meth:`init_weights`: mmengine's Runner initialises
    weights when training and loads a checkpoint instead when testing, so a
    test run never builds nor reads the teacher. The student is on its
    device and already wrapped (SyncBN, DDP) by then. A ``Pretrained``
    ``init_cfg`` of the teacher is loaded strictly, unlike mmengine's
    ``PretrainedInit`` (which only warns): a file that does not fit the
    teacher, another number of classes included, stops the run before the
    first iteration rather than distilling from random weights.

    Args:
        backbone (dict): The backbone config.
        neck (dict, optional): The neck config. Defaults to None.
        head (dict, optional): The head config; with a teacher, an
            :class:`EfficientFormerClsHead` with ``distillation=True``.
            Defaults to None.
        teacher (dict, optional): Config of a classifier that predicts the
            same classes, e.g. ``dict(type='TimmClassifier',
            model_name='regnety_160', init_cfg=dict(type='Pretrained',
            checkpoint=...))``. None trains without distillation. Defaults
            to None.
        distillation_type (str): ``'hard'`` or ``'soft'``, see
            :func:`distillation_loss`. Defaults to 'hard'.
        distillation_alpha (float): Weight of the distillation term, in
            [0, 1]. Defaults to 0.5.
        distillation_tau (float): Temperature of the soft type.
            Defaults to 1.0.
        **kwargs: Other arguments of
            :class:`mmpretrain.models.ImageClassifier`.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 teacher: Optional[dict] = None,
                 distillation_type: str = 'hard',
                 distillation_alpha: float = 0.5,
                 distillation_tau: float = 1.0,
                 **kwargs) -> None:
        super().__init__(backbone, neck=neck, head=head, **kwargs)
        if distillation_type not in DISTILLATION_TYPES:
            raise ConfigError(
                f'model.distillation_type is {distillation_type!r}; use '
                f"{' or '.join(map(repr, DISTILLATION_TYPES))} ('hard' in "
                'the official recipe), or model.teacher=None to train '
                'without distillation')
        if not 0. <= distillation_alpha <= 1.:
            raise ConfigError(
                f'model.distillation_alpha is {distillation_alpha}; it '
                'weighs the teacher\'s term against the labels\' and must '
                'be in [0, 1] (0.5 in the official recipe)')
        if distillation_tau <= 0:
            raise ConfigError(
                f'model.distillation_tau is {distillation_tau}; the '
                'temperature must be positive (1.0 in the official recipe)')
        if teacher is not None and not (isinstance(
                self.head, EfficientFormerClsHead) and self.head.distillation):
            raise ConfigError(
                'model.teacher needs a head with a distillation classifier: '
                "set model.head to type='mmeformer.EfficientFormerClsHead' "
                'with distillation=True, or model.teacher=None')
        self.teacher_cfg = teacher
        self.distillation_type = distillation_type
        self.distillation_alpha = distillation_alpha
        self.distillation_tau = distillation_tau
        self._teacher = None

    @property
    def teacher(self) -> Optional[nn.Module]:
        """The frozen teacher once built, else None."""
        return self._teacher

    def build_teacher(self) -> nn.Module:
        """Build the teacher from ``teacher_cfg`` if not yet built.

        It goes to the device of the student's parameters, in eval mode,
        without gradients.

        Returns:
            nn.Module: The teacher.

        Raises:
            MissingResourceError: If its checkpoint does not exist.
            CheckpointError: If its checkpoint does not fit it.
        """
        if self._teacher is not None:
            return self._teacher
        if self.teacher_cfg is None:
            raise ConfigError(
                'model.teacher is None: there is no teacher to build')
        # The teacher is an MMPretrain model whatever scope is current (a
        # registry builds in the current default scope's registry).
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            teacher = MMPRETRAIN_MODELS.build(self.teacher_cfg)
        init_cfg = teacher.init_cfg
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            self._load_teacher(teacher, init_cfg['checkpoint'])
        else:
            teacher.init_weights()
        teacher.to(next(self.parameters()).device)
        teacher.eval()
        teacher.requires_grad_(False)
        # Not nn.Module.__setattr__, which would register a submodule.
        object.__setattr__(self, '_teacher', teacher)
        return teacher

    @staticmethod
    def _load_teacher(teacher: nn.Module, checkpoint: str) -> None:
        if not osp.isfile(checkpoint):
            raise MissingResourceError([(checkpoint, TEACHER_CHECKPOINT_KEY,
                                         CHECKPOINT_HINTS['teacher'])])
        state_dict = CheckpointLoader.load_checkpoint(
            checkpoint, map_location='cpu')
        state_dict = state_dict.get('state_dict', state_dict)
        try:
            # torch's strict load, not mmengine's: that one raises on rank 0
            # only, and the other processes would wait for it forever.
            teacher.load_state_dict(state_dict, strict=True)
        except RuntimeError as e:
            raise CheckpointError(
                f'{checkpoint} ({TEACHER_CHECKPOINT_KEY}) does not fit '
                f'model.teacher: {e}\nThe teacher must predict the '
                "student's classes (model.teacher.num_classes = "
                'model.head.num_classes) with the architecture the file '
                f"holds; {CHECKPOINT_HINTS['teacher']}") from None

    def init_weights(self) -> None:
        """Initialise the student as configured, then build the teacher."""
        super().init_weights()
        if self.teacher_cfg is not None:
            self.build_teacher()

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """The distillation losses, or the head's alone without a teacher.

        Args:
            inputs (Tensor): The preprocessed (and mixed) images.
            data_samples (list[DataSample]): Their ground truth.

        Returns:
            dict[str, Tensor]: ``loss_cls`` and ``loss_distill``, already
            weighted by ``1 - alpha`` and ``alpha``; without a teacher, the
            head's losses.

        Raises:
            ConfigError: If the teacher predicts another number
                of classes than the student.
        """
        return self.loss_by_feat(
            self.extract_feat(inputs), inputs, data_samples)

    def loss_by_feat(
            self, feats: Tuple[torch.Tensor], inputs: torch.Tensor,
            data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """:meth:`loss` of features already extracted from ``inputs``.

        Args:
            feats (tuple[Tensor]): The neck's output for ``inputs``.
            inputs (Tensor): The images, for the teacher.
            data_samples (list[DataSample]): Their ground truth.

        Returns:
            dict[str, Tensor]: As :meth:`loss`.

        Raises:
            ConfigError: As :meth:`loss`.
        """
        if self.teacher_cfg is None:
            return self.head.loss(feats, data_samples)
        teacher = self.build_teacher()
        cls_score, dist_score = self.head.classifier_scores(feats)
        with torch.no_grad():
            teacher_score = teacher(inputs, mode='tensor')
        if teacher_score.shape != dist_score.shape:
            raise ConfigError(
                f'model.teacher predicts {teacher_score.shape[-1]} classes, '
                f'model.head {dist_score.shape[-1]}: the teacher must '
                'predict the same classes; set model.teacher.num_classes and '
                'its checkpoint to match model.head.num_classes')
        base = self.head.label_loss(cls_score, self.head.targets(data_samples))
        distill = distillation_loss(dist_score, teacher_score,
                                    self.distillation_type,
                                    self.distillation_tau)
        alpha = self.distillation_alpha
        return dict(loss_cls=(1 - alpha) * base, loss_distill=alpha * distill)
