"""Export MMDetection detectors with MMDeploy and check them in ONNX Runtime.

MMDeploy rewrites the detector's post-processing (NMS, mask pasting) into
ONNX and runs the result with its custom-op library for ONNX Runtime
(``RoIAlign``, ``NMS``), shipped in its wheel. MMDeploy 1.3.1 runs here
under :func:`~.mmdeploy_compat.mmdeploy_compat`, with the RPN and box-head
NMS of :mod:`~.mmdet_rewriters` (MMDetection's, not MMDeploy's).
:func:`export_detector` also exports MMSegmentation models with MMDeploy's
segmentation deploy configs.
"""
import copy
import os.path as osp
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config

from mmeformer.models.layers.attention_bias import constant_attention_bias
from mmeformer.runtime import SetupError
from .files import atomic_output, check_output_path, check_shape
from .mmdeploy_compat import mmdeploy_compat
from .onnx_export import check_opset
from .wrappers import load_model, traceable_upsamples

__all__ = ['ALIGNED_ROI_ALIGN_OPSET', 'export_detector', 'verify_detector']

#: First opset whose ``RoiAlign`` samples as mmcv's aligned RoIAlign
#: (``coordinate_transformation_mode='half_pixel'``).
ALIGNED_ROI_ALIGN_OPSET = 16


def _deploy_config(deploy_cfg: Union[str,
                                     Config], shape: Optional[Sequence[int]],
                   opset_version: Optional[int]) -> Config:
    from mmdeploy.utils import is_dynamic_shape
    if not isinstance(deploy_cfg, Config):
        if not osp.isfile(deploy_cfg):
            raise SetupError(f'deploy config {deploy_cfg} does not exist')
        deploy_cfg = Config.fromfile(deploy_cfg)
    deploy_cfg = deploy_cfg.copy()
    if shape is not None and not is_dynamic_shape(deploy_cfg):
        height, width = check_shape(shape)
        # MMDeploy's input_shape is (width, height).
        deploy_cfg.onnx_config.input_shape = [width, height]
    if opset_version is not None:
        check_opset(opset_version)
        deploy_cfg.onnx_config.opset_version = opset_version
    return deploy_cfg


#: An image (path or array); a list of them is one batch.
Image = Union[str, np.ndarray]
Images = Union[Image, List[Image]]


def _test_image(deploy_cfg: Config, image: Optional[Images]):
    """The image (or batch of images) to trace with: the given one, or a
    random one at the static input size (or 800x1216 for dynamic
    configs)."""
    if image is not None:
        for one in image if isinstance(image, (list, tuple)) else [image]:
            if isinstance(one, str) and not osp.isfile(one):
                raise SetupError(f'input image {one} does not exist')
        return image
    width, height = deploy_cfg.onnx_config.get('input_shape') or (1216, 800)
    return np.random.default_rng(0).integers(
        0, 256, (height, width, 3), dtype=np.uint8)


def export_detector(cfg: Config,
                    deploy_cfg: Union[str, Config],
                    output_file: str,
                    checkpoint: Optional[str] = None,
                    shape: Optional[Sequence[int]] = None,
                    image: Optional[Union[str, np.ndarray]] = None,
                    opset_version: Optional[int] = None,
                    fuse: bool = True) -> str:
    """Export an MMDetection (or MMSegmentation) model to ONNX with
    MMDeploy.

    A static deploy config bakes the attention biases of its input size;
    a dynamic one resizes them in the graph. A segmentor's scale-factor
    upsamples are made traceable first (:func:`traceable_upsamples`), so
    that a dynamic file is right at every size.

    Args:
        cfg (Config): The detection (or segmentation) config.
        deploy_cfg (str | Config): An MMDeploy deploy config, e.g. from
            ``configs/deployment``.
        output_file (str): The ``.onnx`` path; its folder must exist.
        checkpoint (str, optional): Weights of the whole detector.
            Defaults to None (random weights).
        shape (Sequence[int], optional): ``(H, W)`` of a static export,
            replacing the deploy config's ``input_shape``. Defaults to None.
        image (str | np.ndarray, optional): Image traced through the test
            pipeline. Defaults to a random image of the input size.
        opset_version (int, optional): Replaces the deploy config's opset.
            Defaults to None.
        fuse (bool): Fold BatchNorm into the backbone's convs.
            Defaults to True.

    Returns:
        str: The absolute path written.
    """
    from mmdeploy.apis import build_task_processor
    from mmdeploy.apis.onnx import export
    from mmdeploy.utils import (get_dynamic_axes, get_input_shape,
                                get_onnx_config, is_dynamic_shape)

    # Registers MMDetection's RPN and box-head NMS with MMDeploy.
    from .mmdet_rewriters import check_test_cfg
    check_test_cfg(cfg.model.get('test_cfg') or {})
    deploy_cfg = _deploy_config(deploy_cfg, shape, opset_version)
    opset = deploy_cfg.onnx_config.get('opset_version', 11)
    if 'roi_head' in cfg.model and opset < ALIGNED_ROI_ALIGN_OPSET:
        raise SetupError(
            f'opset {opset} cannot export the RoIAlign of {cfg.filename}: '
            "before opset 16 ONNX's RoiAlign widens RoIs thinner than one "
            f'feature cell; use opset {ALIGNED_ROI_ALIGN_OPSET} or newer')
    output_file = check_output_path(output_file)
    image = _test_image(deploy_cfg, image)
    model = traceable_upsamples(load_model(cfg, checkpoint))
    if fuse:
        model.backbone.switch_to_deploy()
    processor = build_task_processor(cfg, deploy_cfg, 'cpu')
    data, inputs = processor.create_input(image, get_input_shape(deploy_cfg),
                                          model.data_preprocessor)
    onnx_cfg = get_onnx_config(deploy_cfg)
    names = onnx_cfg['input_names'] + onnx_cfg['output_names']
    dynamic = is_dynamic_shape(deploy_cfg)
    biases = nullcontext() if dynamic else constant_attention_bias()
    with atomic_output(output_file) as tmp, mmdeploy_compat(), biases:
        export(
            model,
            inputs,
            input_metas=dict(
                data_samples=data['data_samples'], mode='predict'),
            output_path_prefix=osp.splitext(tmp)[0],
            backend='onnxruntime',
            input_names=onnx_cfg['input_names'],
            output_names=onnx_cfg['output_names'],
            context_info=dict(deploy_cfg=deploy_cfg),
            opset_version=onnx_cfg.get('opset_version', 11),
            dynamic_axes=get_dynamic_axes(deploy_cfg, names),
            keep_initializers_as_inputs=onnx_cfg.get(
                'keep_initializers_as_inputs', False),
            optimize=onnx_cfg.get('optimize', False))
    return output_file


def verify_detector(cfg: Config,
                    deploy_cfg: Union[str, Config],
                    onnx_file: str,
                    checkpoint: Optional[str] = None,
                    shape: Optional[Sequence[int]] = None,
                    image: Optional[Images] = None,
                    score_thr: float = 0.3,
                    box_tolerance: float = 1.,
                    score_tolerance: float = 0.01,
                    mask_iou: float = 0.95,
                    fuse: bool = True) -> Dict[str, float]:
    """Compare the detections of ONNX Runtime and PyTorch on an image, or
    a batch of them.

    Every detection scoring ``score_thr`` or more on either side must have
    a partner of the same class on the other side (the closest in box and
    score), with every box corner within ``box_tolerance`` pixels, the
    score within ``score_tolerance`` and, for instance segmentation, the
    masks overlapping by ``mask_iou`` (intersection over union) or more.
    Images with no such detection compare nothing and fail. The arguments
    are those of :func:`export_detector` (``image`` may be a list: one
    batch), plus the tolerances.

    Returns:
        dict: ``num_dets`` compared, of ``num_classes`` classes, worst
        ``box_diff``, ``score_diff`` and ``mask_iou`` (1.0 without masks).

    Raises:
        AssertionError: If a detection has no partner, or there is no
            detection to compare.
    """
    from mmdeploy.apis import build_task_processor
    from mmdeploy.utils import get_input_shape
    deploy_cfg = _deploy_config(deploy_cfg, shape, None)
    image = _test_image(deploy_cfg, image)
    model = load_model(cfg, checkpoint)
    if fuse:
        model.backbone.switch_to_deploy()
    processor = build_task_processor(cfg, deploy_cfg, 'cpu')
    backend = processor.build_backend_model([onnx_file])
    data, _ = processor.create_input(image, get_input_shape(deploy_cfg),
                                     model.data_preprocessor)
    with torch.no_grad():
        # Both fill the data samples they are given: one copy each.
        expected = model.predict(data['inputs'],
                                 copy.deepcopy(data['data_samples']))
        actual = backend(
            data['inputs'],
            copy.deepcopy(data['data_samples']),
            mode='predict')
    worst = dict(num_dets=0, box_diff=0., score_diff=0., mask_iou=1.)
    classes = set()
    for ref, out in zip(expected, actual):
        ref, out = ref.pred_instances, out.pred_instances
        for a, b in ((ref, out), (out, ref)):
            keep = a.scores >= score_thr
            masks = a.masks[keep] if 'masks' in a and 'masks' in b else None
            for i, (box, score, label) in enumerate(
                    zip(a.bboxes[keep], a.scores[keep], a.labels[keep])):
                same = b.labels == label
                if not same.any():
                    raise AssertionError(
                        f'no class-{int(label)} detection on the other '
                        f'side for box {box.tolist()} ({score:.3f})')
                # The partner is the closest in box and score together:
                # near-equal boxes of one class can differ in score.
                box_diff = (b.bboxes[same] - box).abs().amax(dim=1)
                score_diffs = (b.scores[same] - score).abs()
                best = int(
                    torch.maximum(box_diff / box_tolerance,
                                  score_diffs / score_tolerance).argmin())
                score_diff = float(score_diffs[best])
                if (box_diff[best] > box_tolerance
                        or score_diff > score_tolerance):
                    raise AssertionError(
                        f'detection {box.tolist()} ({score:.3f}, class '
                        f'{int(label)}): closest partner differs by '
                        f'{float(box_diff[best]):.2f} px and {score_diff:.4f}')
                if masks is not None:
                    iou = _mask_iou(masks[i], b.masks[same][best])
                    if iou < mask_iou:
                        raise AssertionError(
                            f'detection {box.tolist()} ({score:.3f}, class '
                            f'{int(label)}): masks overlap by IoU {iou:.3f} '
                            f'(required {mask_iou})')
                    worst['mask_iou'] = min(worst['mask_iou'], iou)
                worst['box_diff'] = max(worst['box_diff'],
                                        float(box_diff[best]))
                worst['score_diff'] = max(worst['score_diff'], score_diff)
            worst['num_dets'] += int(keep.sum())
            classes.update(a.labels[keep].tolist())
    if worst['num_dets'] == 0:
        raise AssertionError(
            f'no detection scores {score_thr} or more on either side: '
            'nothing was compared; verify with an image the model detects '
            'objects in (--input-img) or a lower score threshold')
    return dict(worst, num_classes=len(classes))


def _mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """Intersection over union of two masks (binarised at 0.5); 1.0 when
    both are empty."""
    a, b = a.float() >= 0.5, b.float() >= 0.5
    union = int((a | b).sum())
    return float(int((a & b).sum()) / union) if union else 1.
