# Semantic FPN, EfficientFormer-L3 backbone, ADE20K, 40k iterations.
# Origin: snap-research/EfficientFormer
# segmentation/configs/sem_fpn/fpn_efficientformer_l3_ade20k_40k.py;
# published mIoU 43.5 (arXiv 2206.01191, not yet confirmed).
_base_ = './_base_/fpn_efficientformer_ade20k_40k.py'

model = dict(
    backbone=dict(
        arch='l3',
        drop_path_rate=0.,
        init_cfg=dict(checkpoint='checkpoints/efficientformer_l3_in1k.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
