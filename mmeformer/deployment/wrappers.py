"""Models to export: one input image batch in, plain tensors out.

Each wrapper turns one OpenMMLab model into the function a deployment
runtime runs, with no data samples or image metas, so that every size is
read from the input tensor and a trace stays valid for any input size.
Their GroupNorms become :class:`~.group_norm.ExportGroupNorm`, which ONNX
Runtime computes as accurately as PyTorch.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import MODELS
from mmengine.runner import load_checkpoint

from mmeformer.runtime import SetupError, check_checkpoint, get_host
from .group_norm import swap_group_norms

__all__ = [
    'ClassifierExport', 'BackboneExport', 'SegmentorExport', 'EXPORT_KINDS',
    'default_kind', 'load_model', 'build_export_model', 'traceable_upsamples'
]


class ClassifierExport(nn.Module):
    """ImageNet logits of an MMPretrain ``ImageClassifier``.

    With EfficientFormer's head this is the mean of the class and the
    distillation head, as at inference.

    Args:
        classifier (nn.Module): The classifier; its GroupNorms are swapped
            for :class:`ExportGroupNorm` in place.
    """

    output_names = ('logits', )

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = swap_group_norms(classifier)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.classifier(inputs, mode='tensor')


class BackboneExport(nn.Module):
    """The dense feature maps of a backbone, one output per ``out_indices``.

    Args:
        backbone (nn.Module): The backbone; its GroupNorms (V1's dense
            output norms) are swapped for :class:`ExportGroupNorm` in place.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = swap_group_norms(backbone)
        self.output_names = tuple(f'feat{i}'
                                  for i in range(len(backbone.out_indices)))

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(self.backbone(inputs))


class SegmentorExport(nn.Module):
    """Segmentation logits of an MMSegmentation ``EncoderDecoder``.

    Whole-image inference: the decode head's logits resized to the input
    size, as ``EncoderDecoder.encode_decode`` does, with the size read from
    the input instead of image metas.

    The segmentor's scale-factor ``Upsample`` modules are replaced in place
    (:func:`traceable_upsamples`).

    Args:
        segmentor (nn.Module): The segmentor; its GroupNorms are swapped for
            :class:`ExportGroupNorm` in place.
    """

    output_names = ('seg_logits', )

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = swap_group_norms(traceable_upsamples(segmentor))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        head = self.segmentor.decode_head
        logits = head(self.segmentor.extract_feat(inputs))
        return F.interpolate(
            logits,
            size=inputs.shape[2:],
            mode='bilinear',
            align_corners=head.align_corners)


def traceable_upsamples(model: nn.Module) -> nn.Module:
    """Replace MMSegmentation's scale-factor ``Upsample`` modules of
    ``model`` by ``nn.Upsample``, in place.

    ``mmseg.models.utils.Upsample`` (the Semantic FPN head's scale heads)
    computes its output size with Python ints, which a trace freezes: a
    dynamic file would upsample by the wrong factor at every other size.
    ``nn.Upsample`` gives the same output and traces the scale factor.
    Models without such modules are left as they are.

    Returns:
        nn.Module: ``model``.
    """
    try:
        from mmseg.models.utils import Upsample
    except ImportError:
        return model
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, Upsample) and not child.size:
                setattr(
                    module, name,
                    nn.Upsample(
                        scale_factor=child.scale_factor,
                        mode=child.mode,
                        align_corners=child.align_corners))
    return model


#: kind -> (wrapper, host scopes whose configs can give that kind).
EXPORT_KINDS = {
    'classifier': (ClassifierExport, ('mmpretrain', )),
    'backbone': (BackboneExport, ('mmpretrain', 'mmdet', 'mmseg')),
    'segmentor': (SegmentorExport, ('mmseg', )),
}


def default_kind(cfg: Config) -> str:
    """The kind a config exports by default: its whole model.

    Returns:
        str: 'classifier', 'segmentor' or 'detector'.
    """
    return {
        'mmpretrain': 'classifier',
        'mmseg': 'segmentor',
        'mmdet': 'detector'
    }[get_host(cfg).scope]


def load_model(cfg: Config, checkpoint: Optional[str] = None) -> nn.Module:
    """Build the whole model of ``cfg`` in its host and load its weights.

    Args:
        cfg (Config): A classification, detection or segmentation config.
        checkpoint (str, optional): Weights of the whole model of ``cfg``.
            Without it the weights are random (the backbone's ``init_cfg``
            is not applied: it would load pretrained weights).
            Defaults to None.

    Returns:
        nn.Module: The model in eval mode.

    Raises:
        CheckpointError: If the checkpoint cannot be read or does not fit
            the model (see :func:`~mmeformer.runtime.check_checkpoint`).
    """
    get_host(cfg).register_modules()
    model_cfg = cfg.model.copy()
    model_cfg.get('backbone', {}).pop('init_cfg', None)
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        # Read and compared as tools/test.py does, so that a truncated,
        # unsafe or other model's file is one message, not a traceback.
        check_checkpoint(
            model,
            checkpoint,
            cfg.filename,
            fix='use the checkpoint trained (or converted) for this config',
            partial_hint=None)
        load_checkpoint(
            model,
            checkpoint,
            map_location='cpu',
            strict=True,
            logger='silent')
    return model.eval()


def build_export_model(cfg: Config,
                       kind: str,
                       checkpoint: Optional[str] = None,
                       fuse: bool = True) -> nn.Module:
    """Build the model of ``cfg``, load its weights and wrap it for export.

    Args:
        cfg (Config): A classification, detection or segmentation config.
        kind (str): One of :data:`EXPORT_KINDS`.
        checkpoint (str, optional): Weights of the whole model of ``cfg``;
            see :func:`load_model`. Defaults to None.
        fuse (bool): Fold BatchNorm into the convs (``switch_to_deploy``),
            as deployed models run. Defaults to True.

    Returns:
        nn.Module: The wrapper in eval mode, with ``output_names``.

    Raises:
        SetupError: If the kind is unknown, does not fit the config's task,
            or the checkpoint does not fit the model.
    """
    if kind not in EXPORT_KINDS:
        raise SetupError(
            f'unknown model kind {kind!r}; kinds exported here: '
            f"{', '.join(EXPORT_KINDS)} (detectors go through MMDeploy: "
            'see docs/deployment.md)')
    wrapper, scopes = EXPORT_KINDS[kind]
    host = get_host(cfg)
    if host.scope not in scopes:
        raise SetupError(
            f'a {host.task} config ({host.scope}) has no {kind} to export; '
            f'use --kind {default_kind(cfg)} or --kind backbone')
    model = load_model(cfg, checkpoint)
    if fuse:
        model.backbone.switch_to_deploy()
    return wrapper(model.backbone if kind == 'backbone' else model).eval()
