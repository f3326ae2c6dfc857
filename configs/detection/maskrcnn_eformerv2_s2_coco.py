# Mask R-CNN + FPN, EfficientFormerV2-S2 backbone, COCO 2017, 1x schedule.
# Origin: snap-research/EfficientFormer
# detection/configs/mask_rcnn_efficientformerv2_s2_fpn_1x_coco.py;
# published box / mask AP 43.4 / 39.5 (arXiv 2212.08059).
_base_ = './_base_/maskrcnn_efficientformerv2_coco.py'

model = dict(
    backbone=dict(
        arch='s2',
        drop_path_rate=0.02,
        init_cfg=dict(checkpoint='checkpoints/efficientformerv2_s2_in1k.pth')),
    neck=dict(in_channels=[32, 64, 144, 288]))
