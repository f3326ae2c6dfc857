# EfficientFormerV2-S2, ImageNet-1K, 450 epochs. Origin: the official README
# table (snap-research/EfficientFormer), row "EfficientFormerV2-S2", top-1
# 81.6 / 82.0 after 300 / 450 epochs; drop path 0.02 as in its
# models/efficientformer_v2.py (arXiv 2212.08059).
_base_ = './_base_/efficientformerv2_in1k.py'

model = dict(
    backbone=dict(arch='s2', drop_path_rate=0.02), head=dict(in_channels=288))
