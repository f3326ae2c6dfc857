# Semantic FPN, EfficientFormerV2-S2 backbone, ADE20K, 40k iterations.
# Origin: snap-research/EfficientFormer
# segmentation/configs/sem_fpn/fpn_efficientformerv2_s2_ade20k_40k.py;
# published mIoU 42.4 (arXiv 2212.08059).
_base_ = './_base_/fpn_efficientformerv2_ade20k_40k.py'

model = dict(
    backbone=dict(
        arch='s2',
        drop_path_rate=0.02,
        init_cfg=dict(checkpoint='checkpoints/efficientformerv2_s2_in1k.pth')),
    neck=dict(in_channels=[32, 64, 144, 288]))
