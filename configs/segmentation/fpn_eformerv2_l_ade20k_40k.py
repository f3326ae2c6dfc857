# Semantic FPN, EfficientFormerV2-L backbone, ADE20K, 40k iterations.
# Origin: snap-research/EfficientFormer
# segmentation/configs/sem_fpn/fpn_efficientformerv2_l_ade20k_40k.py;
# published mIoU 45.2 (arXiv 2212.08059, not yet confirmed).
_base_ = './_base_/fpn_efficientformerv2_ade20k_40k.py'

model = dict(
    backbone=dict(
        arch='l',
        drop_path_rate=0.1,
        init_cfg=dict(checkpoint='checkpoints/efficientformerv2_l_in1k.pth')),
    neck=dict(in_channels=[40, 80, 192, 384]))
