"""The mmeformer models converted checkpoints are made for.

A converted checkpoint is checked against the state dict of the real model
it is meant for, built from the package's own classes, so every name and
shape is exactly what strict loading expects. The models are built on the
``meta`` device: only names, shapes and bias grids are needed, not memory.
"""
from collections import OrderedDict
from typing import Dict, Tuple

import torch
import torch.nn as nn

from mmeformer.models.heads import EfficientFormerClsHead
from mmeformer.models.layers import AttentionBias
from .errors import ConversionError
from .variants import Variant

Grid = Tuple[int, int]

#: The official V1 dense backbones normalise each output with a fresh
#: GroupNorm(1, C); the V2 ones have no output norm.
DENSE_OUT_NORMS = {'v1': dict(type='GN', num_groups=1), 'v2': None}


def backbone_config(variant: Variant, task: str, ref_size: Grid) -> dict:
    """Backbone arguments of a classifier or a dense model.

    Args:
        variant (Variant): The variant.
        task (str): ``'classification'``, ``'detection'`` or
            ``'segmentation'``.
        ref_size (tuple[int, int]): ``attn_ref_size`` of the backbone.

    Returns:
        dict: Keyword arguments of the backbone class, as in the package's
        configs of that task.
    """
    if task == 'classification':
        return dict(arch=variant.arch, final_norm=True, attn_ref_size=ref_size)
    return dict(
        arch=variant.arch,
        out_indices=(0, 1, 2, 3),
        attn_ref_size=ref_size,
        out_norm_cfg=DENSE_OUT_NORMS[variant.family])


def build_backbone(variant: Variant, task: str, ref_size: Grid) -> nn.Module:
    """The target backbone, on the ``meta`` device.

    Args:
        variant (Variant): The variant.
        task (str): ``'classification'``, ``'detection'`` or
            ``'segmentation'``.
        ref_size (tuple[int, int]): ``attn_ref_size`` of the backbone.

    Returns:
        nn.Module: The backbone, without memory behind its tensors.
    """
    try:
        with torch.device('meta'):
            return variant.backbone_cls(
                **backbone_config(variant, task, ref_size))
    except ValueError as e:
        raise ConversionError(
            f'Cannot build {variant.name} for attn_ref_size {ref_size}: {e}'
        ) from e


def bias_grids(backbone: nn.Module) -> Dict[str, Grid]:
    """Key grid of every attention-bias table, by its state-dict name.

    Args:
        backbone (nn.Module): A backbone, e.g. from :func:`build_backbone`.

    Returns:
        dict[str, tuple[int, int]]: ``backbone.<...>.attn_bias.table`` to
        the ``(h, w)`` grid the table's offsets span.
    """
    return {
        f'backbone.{name}.table': module.key_grid
        for name, module in backbone.named_modules()
        if isinstance(module, AttentionBias)
    }


def expected_shapes(backbone: nn.Module,
                    variant: Variant,
                    task: str,
                    num_classes: int = 1000,
                    distillation: bool = True) -> 'OrderedDict[str, tuple]':
    """Every tensor the target model loads, with its shape, in model order.

    Args:
        backbone (nn.Module): The target backbone, from
            :func:`build_backbone`.
        variant (Variant): Its variant.
        task (str): ``'classification'`` for an mmpretrain
            ``ImageClassifier`` (``backbone.*`` and ``head.*``);
            ``'detection'`` or ``'segmentation'`` for the backbone part of
            an mmdet / mmseg model (``backbone.*``).
        num_classes (int): Classes of the classifier head. Defaults to 1000.
        distillation (bool): Whether the head has ``dist_head``.
            Defaults to True.

    Returns:
        OrderedDict[str, tuple]: Names and shapes.
    """
    parts = {'backbone.': backbone}
    if task == 'classification':
        with torch.device('meta'):
            parts['head.'] = EfficientFormerClsHead(
                num_classes=num_classes,
                in_channels=variant.channels[-1],
                distillation=distillation)
    return OrderedDict((prefix + name, tuple(tensor.shape))
                       for prefix, module in parts.items()
                       for name, tensor in module.state_dict().items())
