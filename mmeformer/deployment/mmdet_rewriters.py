"""Mask R-CNN's post-processing in ONNX as MMDetection computes it.

MMDeploy 1.3.1 rewrites the two NMS steps of a two-stage detector for
export, and its rewrites select other detections than MMDetection:

* the box head keeps, for each RoI, only the box of its highest-scoring
  class and pairs it with every class's score, where MMDetection decodes
  one box per class (``reg_class_agnostic=False``);
* the RPN runs one NMS over the proposals of all levels, where MMDetection
  runs one per level (``batched_nms`` with the level ids); it drops the
  proposals under the deploy config's ``score_threshold``, where
  MMDetection's RPN has no threshold, and keeps the empty boxes that
  MMDetection removes (``min_bbox_size``).

The rewriters here replace both for the ONNX Runtime backend (MMDeploy
prefers a backend's rewriter to its default one) with MMDetection's
computation: boxes of different classes (or levels) kept apart by
mmcv's ``batched_nms`` offsets, one ONNX ``NonMaxSuppression`` per image,
every value from the model's ``test_cfg`` (the deploy config's
``post_processing`` thresholds are not used). Importing this module
registers them; they run only inside MMDeploy's export.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdeploy.codebase.mmdet.deploy import gather_topk
from mmdeploy.core import FUNCTION_REWRITER
from mmdeploy.mmcv.ops.nms import ONNXNMSop
from mmdeploy.utils import is_dynamic_shape
from mmdet.structures.bbox import get_box_tensor
from mmengine.config import ConfigDict
from torch import Tensor

from mmeformer.runtime import SetupError

__all__ = ['check_test_cfg']

#: NMS score of the boxes an NMS must not consider (every probability is
#: above :data:`_NMS_SCORE_THRESHOLD`, these are below it).
_IGNORED = -1.
_NMS_SCORE_THRESHOLD = -0.5


def _nms_settings(cfg: ConfigDict, name: str) -> Tuple[float, int]:
    """The IoU threshold and the most boxes per image of ``test_cfg.name``.

    Raises:
        SetupError: If ONNX's ``NonMaxSuppression`` cannot compute it.
    """
    nms = cfg.get('nms') or {}
    if nms.get('type', 'nms') != 'nms' or nms.get('offset', 0) != 0:
        raise SetupError(
            f"model.test_cfg.{name}.nms={dict(nms)} cannot be exported: "
            "ONNX's NonMaxSuppression is mmcv's nms with offset 0; set "
            f"test_cfg.{name}.nms=dict(type='nms', iou_threshold=...)")
    if cfg.get('max_per_img', 0) <= 0:
        raise SetupError(
            f'model.test_cfg.{name}.max_per_img='
            f'{cfg.get("max_per_img")} cannot be exported: the file keeps '
            'a fixed most detections per image; set it to a positive number')
    return float(nms['iou_threshold']), int(cfg.max_per_img)


def check_test_cfg(test_cfg: ConfigDict) -> None:
    """Refuse a two-stage ``test_cfg`` whose NMS the rewriters cannot export.

    Raises:
        SetupError: One line naming the setting and the fix.
    """
    for name in ('rpn', 'rcnn'):
        if name in test_cfg:
            _nms_settings(test_cfg[name], name)


def batched_nms(boxes: Tensor, scores: Tensor, groups: Tensor,
                considered: Tensor, iou_threshold: float,
                max_num: int) -> Tuple[Tensor, Tensor]:
    """mmcv's ``batched_nms`` for each image of a batch, in an ONNX graph.

    As in mmcv, boxes of different groups (classes, levels) never suppress
    each other: each group is moved by ``group * (largest coordinate +
    1)`` first, the largest coordinate taken over the considered boxes of
    the image.

    Args:
        boxes (Tensor): ``(N, M, 4)`` boxes (x1, y1, x2, y2).
        scores (Tensor): ``(N, M)`` probabilities.
        groups (Tensor): ``(N, M)`` group ids.
        considered (Tensor): ``(N, M)``, the boxes the NMS sees.
        iou_threshold (float): Boxes overlapping a kept one by more are
            dropped.
        max_num (int): Most boxes kept per image.

    Returns:
        tuple[Tensor, Tensor]: ``dets`` ``(N, K, 5)``, the kept boxes and
        their scores, by descending score, ``K <= max_num``, and their
        ``groups`` ``(N, K)``. An image with fewer than ``K`` boxes has
        rows of zeros and group -1 after its own.
    """
    far = boxes.new_tensor(float('-inf'))
    largest = torch.where(considered[..., None], boxes, far).flatten(1)
    largest = largest.max(dim=1, keepdim=True)[0]
    offsets = groups.to(boxes) * (largest + 1)
    nms_scores = torch.where(considered, scores, scores.new_tensor(_IGNORED))
    selected = ONNXNMSop.apply(boxes + offsets[..., None],
                               nms_scores.unsqueeze(1), max_num, iou_threshold,
                               _NMS_SCORE_THRESHOLD)
    image_ids, box_ids = selected[:, 0], selected[:, 2]
    # One row per image: its kept boxes first (NMS order, by score), then
    # one padding column so that no row is empty.
    batch_size = boxes.shape[0]
    images = torch.arange(batch_size, device=boxes.device)
    rank = torch.where(image_ids[None] == images[:, None],
                       nms_scores[image_ids, box_ids][None],
                       scores.new_tensor(_IGNORED))
    rank = torch.cat([rank, rank.new_full((batch_size, 1), _IGNORED)], 1)
    box_ids = torch.cat([box_ids, box_ids.new_zeros(1)])
    top, order = rank.topk(max_num, dim=1)
    kept = top > _IGNORED
    ids = box_ids[order]
    rows = images[:, None]
    dets = torch.cat([boxes[rows, ids], scores[rows, ids][..., None]], -1)
    dets = torch.where(kept[..., None], dets, dets.new_zeros(()))
    return dets, torch.where(kept, groups[rows, ids], groups.new_tensor(-1))


@FUNCTION_REWRITER.register_rewriter(
    'mmdet.models.dense_heads.rpn_head.RPNHead.predict_by_feat',
    backend='onnxruntime')
def rpn_head__predict_by_feat(self,
                              cls_scores: List[Tensor],
                              bbox_preds: List[Tensor],
                              score_factors: Optional[List[Tensor]] = None,
                              batch_img_metas: Optional[List[dict]] = None,
                              cfg: Optional[ConfigDict] = None,
                              rescale: bool = False,
                              with_nms: bool = True,
                              **kwargs) -> Tuple[Tensor, Tensor]:
    """Proposals as ``RPNHead._predict_by_feat_single`` selects them.

    The ``nms_pre`` best anchors of each level, decoded, the empty ones
    (``min_bbox_size``) removed, one NMS per level, the ``max_per_img``
    best kept; no score threshold.

    Returns:
        tuple[Tensor, Tensor]: ``dets`` ``(N, K, 5)`` (rows of zeros after
        an image's last proposal) and ``labels`` ``(N, K)``, all 0.
    """
    ctx = FUNCTION_REWRITER.get_context()
    cfg = self.test_cfg if cfg is None else cfg
    iou_threshold, max_per_img = _nms_settings(cfg, 'rpn')
    featmap_sizes = [score.shape[-2:] for score in cls_scores]
    mlvl_priors = self.prior_generator.grid_priors(
        featmap_sizes, dtype=cls_scores[0].dtype, device=cls_scores[0].device)
    batch_size = cls_scores[0].shape[0]
    nms_pre = cfg.get('nms_pre', -1)
    mlvl_deltas, mlvl_priors_kept, mlvl_scores, mlvl_levels = [], [], [], []
    box_dim = self.bbox_coder.encode_size
    for level, priors in enumerate(mlvl_priors):
        scores = cls_scores[level].permute(0, 2, 3, 1)
        scores = scores.reshape(batch_size, -1, self.cls_out_channels)
        # The foreground score (index 0), as in MMDetection.
        scores = (scores.sigmoid()
                  if self.use_sigmoid_cls else scores.softmax(-1))[..., 0]
        deltas = bbox_preds[level].permute(0, 2, 3, 1)
        deltas = deltas.reshape(batch_size, -1, box_dim)
        if not is_dynamic_shape(ctx.cfg):
            priors = priors.data
        priors = priors.unsqueeze(0)
        if nms_pre > 0:
            # MMDeploy's topk keeps at most the level's size.
            scores, inds = scores.topk(nms_pre)
            deltas = gather_topk(
                deltas, inds=inds, batch_size=batch_size, is_batched=True)
            priors = gather_topk(
                priors, inds=inds, batch_size=batch_size, is_batched=False)
        mlvl_deltas.append(deltas)
        mlvl_priors_kept.append(priors.expand(batch_size, -1, -1))
        mlvl_scores.append(scores)
        mlvl_levels.append(torch.full_like(scores, level, dtype=torch.long))
    boxes = get_box_tensor(
        self.bbox_coder.decode(
            torch.cat(mlvl_priors_kept, 1),
            torch.cat(mlvl_deltas, 1),
            max_shape=batch_img_metas[0]['img_shape']))
    scores = torch.cat(mlvl_scores, 1)
    min_size = cfg.get('min_bbox_size', -1)
    if min_size >= 0:
        considered = ((boxes[..., 2] - boxes[..., 0] > min_size) &
                      (boxes[..., 3] - boxes[..., 1] > min_size))
    else:
        considered = torch.ones_like(scores, dtype=torch.bool)
    dets, _ = batched_nms(boxes, scores, torch.cat(mlvl_levels, 1), considered,
                          iou_threshold, max_per_img)
    return dets, dets.new_zeros(dets.shape[:2], dtype=torch.long)


@FUNCTION_REWRITER.register_rewriter(
    'mmdet.models.roi_heads.bbox_heads.bbox_head.BBoxHead.predict_by_feat',
    backend='onnxruntime')
def bbox_head__predict_by_feat(self,
                               rois: Tensor,
                               cls_scores: Tensor,
                               bbox_preds: Optional[Tensor],
                               batch_img_metas: List[dict],
                               rcnn_test_cfg: Optional[ConfigDict] = None,
                               rescale: bool = False) -> Tuple[Tensor, Tensor]:
    """Detections as ``BBoxHead._predict_by_feat_single`` selects them.

    One box per RoI and class (one per RoI with ``reg_class_agnostic``),
    the pairs scoring over ``score_thr``, one NMS per class, the
    ``max_per_img`` best kept. RoIs of zero size are the RPN's padding
    (MMDetection's proposals are never empty) and are ignored.

    Args:
        rois (Tensor): ``(N, R, 5)``, the image index and the box.
        cls_scores (Tensor): ``(N, R, num_classes + 1)``.
        bbox_preds (Tensor, optional): ``(N, R, 4 * num_classes)`` or
            ``(N, R, 4)``.

    Returns:
        tuple[Tensor, Tensor]: ``dets`` ``(N, K, 5)`` and ``labels``
        ``(N, K)``; rows of zeros (label -1) after an image's last
        detection.
    """
    iou_threshold, max_per_img = _nms_settings(rcnn_test_cfg, 'rcnn')
    if self.custom_cls_channels:
        scores = self.loss_cls.get_activation(cls_scores)
    else:
        scores = F.softmax(cls_scores, dim=-1)
    scores = scores[..., :self.num_classes]
    batch_size, num_rois = rois.shape[:2]
    if bbox_preds is None:
        boxes = rois[..., 1:]
    else:
        boxes = get_box_tensor(
            self.bbox_coder.decode(
                rois[..., 1:],
                bbox_preds,
                max_shape=batch_img_metas[0]['img_shape']))
    # (N, R, 1 or num_classes, 4) -> one box per RoI and class.
    boxes = boxes.reshape(batch_size, num_rois, -1, 4)
    boxes = boxes.expand(-1, -1, self.num_classes, -1).flatten(1, 2)
    labels = torch.arange(self.num_classes, device=scores.device)
    labels = (torch.zeros_like(scores, dtype=torch.long) + labels).flatten(1)
    proposal = ((rois[..., 3] > rois[..., 1]) &
                (rois[..., 4] > rois[..., 2]))[..., None]
    considered = (scores > rcnn_test_cfg.score_thr) & proposal
    return batched_nms(boxes, scores.flatten(1), labels, considered.flatten(1),
                       iou_threshold, max_per_img)
