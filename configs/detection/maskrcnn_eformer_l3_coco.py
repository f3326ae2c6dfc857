# Mask R-CNN + FPN, EfficientFormer-L3 backbone, COCO 2017, 1x schedule.
# Origin: snap-research/EfficientFormer
# detection/configs/mask_rcnn_efficientformer_l3_fpn_1x_coco.py;
# published box / mask AP 41.4 / 38.1 (arXiv 2206.01191, not yet confirmed).
_base_ = './_base_/maskrcnn_efficientformer_coco.py'

model = dict(
    backbone=dict(
        arch='l3',
        drop_path_rate=0.,
        init_cfg=dict(checkpoint='checkpoints/efficientformer_l3_in1k.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
