# Mask R-CNN + FPN, EfficientFormerV2-L backbone, COCO 2017, 1x schedule.
# Origin: snap-research/EfficientFormer
# detection/configs/mask_rcnn_efficientformerv2_l_fpn_1x_coco.py;
# published box / mask AP 44.7 / 40.4 (arXiv 2212.08059, not yet confirmed).
_base_ = './_base_/maskrcnn_efficientformerv2_coco.py'

model = dict(
    backbone=dict(
        arch='l',
        drop_path_rate=0.1,
        init_cfg=dict(checkpoint='checkpoints/efficientformerv2_l_in1k.pth')),
    neck=dict(in_channels=[40, 80, 192, 384]))
