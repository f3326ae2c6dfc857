# Semantic FPN, EfficientFormer-L7 backbone, ADE20K, 40k iterations.
# Origin: snap-research/EfficientFormer
# segmentation/configs/sem_fpn/fpn_efficientformer_l7_ade20k_40k.py;
# published mIoU 45.1 (arXiv 2206.01191, not yet confirmed).
_base_ = './_base_/fpn_efficientformer_ade20k_40k.py'

model = dict(
    backbone=dict(
        arch='l7',
        drop_path_rate=0.,
        # as the official L7 dense backbone
        layer_scale_init_value=1e-6,
        init_cfg=dict(checkpoint='checkpoints/efficientformer_l7_in1k.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
