# EfficientFormerV2-L, ImageNet-1K, 450 epochs. Origin: the official README
# table (snap-research/EfficientFormer), row "EfficientFormerV2-L", top-1
# 83.3 / 83.5 after 300 / 450 epochs; drop path 0.1 as in its
# models/efficientformer_v2.py (arXiv 2212.08059).
_base_ = './_base_/efficientformerv2_in1k.py'

model = dict(
    backbone=dict(arch='l', drop_path_rate=0.1), head=dict(in_channels=384))
