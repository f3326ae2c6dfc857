# Mask R-CNN + FPN, EfficientFormer-L7 backbone, COCO 2017, 1x schedule.
# Origin: snap-research/EfficientFormer
# detection/configs/mask_rcnn_efficientformer_l7_fpn_1x_coco.py;
# published box / mask AP 42.6 / 39.0 (arXiv 2206.01191, not yet confirmed).
_base_ = './_base_/maskrcnn_efficientformer_coco.py'

model = dict(
    backbone=dict(
        arch='l7',
        drop_path_rate=0.,
        # as the official L7 dense backbone
        layer_scale_init_value=1e-6,
        init_cfg=dict(checkpoint='checkpoints/efficientformer_l7_in1k.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
