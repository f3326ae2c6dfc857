# EfficientFormerV2-S0, ImageNet-1K, 450 epochs. Origin: the official README
# table (snap-research/EfficientFormer), row "EfficientFormerV2-S0", top-1
# 75.7 / 76.2 after 300 / 450 epochs; drop path 0. as in its
# models/efficientformer_v2.py (arXiv 2212.08059).
_base_ = './_base_/efficientformerv2_in1k.py'

model = dict(
    backbone=dict(arch='s0', drop_path_rate=0.), head=dict(in_channels=176))
