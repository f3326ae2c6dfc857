# Mask R-CNN + FPN, EfficientFormer-L1 backbone, COCO 2017, 1x schedule.
# Origin: snap-research/EfficientFormer
# detection/configs/mask_rcnn_efficientformer_l1_fpn_1x_coco.py;
# published box / mask AP 37.9 / 35.4 (arXiv 2206.01191, not yet confirmed).
_base_ = './_base_/maskrcnn_efficientformer_coco.py'

model = dict(
    backbone=dict(
        arch='l1',
        drop_path_rate=0.,
        init_cfg=dict(checkpoint='checkpoints/efficientformer_l1_in1k.pth')),
    neck=dict(in_channels=[48, 96, 224, 448]))
