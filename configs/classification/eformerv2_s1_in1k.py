# EfficientFormerV2-S1, ImageNet-1K, 450 epochs. Origin: the official README
# table (snap-research/EfficientFormer), row "EfficientFormerV2-S1", top-1
# 79.0 / 79.7 after 300 / 450 epochs; drop path 0. as in its
# models/efficientformer_v2.py (arXiv 2212.08059).
_base_ = './_base_/efficientformerv2_in1k.py'

model = dict(
    backbone=dict(arch='s1', drop_path_rate=0.), head=dict(in_channels=224))
