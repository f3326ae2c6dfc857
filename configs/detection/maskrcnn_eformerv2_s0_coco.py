# Mask R-CNN + FPN, EfficientFormerV2-S0 backbone, COCO 2017, 1x schedule.
# Origin: snap-research/EfficientFormer
# detection/configs/mask_rcnn_efficientformerv2_s0_fpn_1x_coco.py;
# no published result (official issue #54).
_base_ = './_base_/maskrcnn_efficientformerv2_coco.py'

model = dict(
    backbone=dict(
        arch='s0',
        drop_path_rate=0.,
        init_cfg=dict(checkpoint='checkpoints/efficientformerv2_s0_in1k.pth')),
    neck=dict(in_channels=[32, 48, 96, 176]))
