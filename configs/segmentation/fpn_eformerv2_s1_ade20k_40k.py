# Semantic FPN, EfficientFormerV2-S1 backbone, ADE20K, 40k iterations.
# Origin: snap-research/EfficientFormer
# segmentation/configs/sem_fpn/fpn_efficientformerv2_s1_ade20k_40k.py;
# no published result (official issue #54).
_base_ = './_base_/fpn_efficientformerv2_ade20k_40k.py'

model = dict(
    backbone=dict(
        arch='s1',
        drop_path_rate=0.,
        init_cfg=dict(checkpoint='checkpoints/efficientformerv2_s1_in1k.pth')),
    neck=dict(in_channels=[32, 48, 120, 224]))
