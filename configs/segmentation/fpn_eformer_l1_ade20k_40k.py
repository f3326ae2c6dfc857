# Semantic FPN, EfficientFormer-L1 backbone, ADE20K, 40k iterations.
# Origin: snap-research/EfficientFormer
# segmentation/configs/sem_fpn/fpn_efficientformer_l1_ade20k_40k.py;
# published mIoU 38.9 (arXiv 2206.01191, not yet confirmed).
_base_ = './_base_/fpn_efficientformer_ade20k_40k.py'

model = dict(
    backbone=dict(
        arch='l1',
        drop_path_rate=0.,
        init_cfg=dict(checkpoint='checkpoints/efficientformer_l1_in1k.pth')),
    neck=dict(in_channels=[48, 96, 224, 448]))
