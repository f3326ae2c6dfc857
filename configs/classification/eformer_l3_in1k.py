# EfficientFormer-L3, ImageNet-1K, 300 epochs. Origin: the official README
# table (snap-research/EfficientFormer), row "EfficientFormer-L3", top-1 82.4;
# drop path 0. as in its models/efficientformer.py (arXiv 2206.01191).
_base_ = './_base_/efficientformer_in1k.py'

model = dict(
    backbone=dict(arch='l3', drop_path_rate=0.), head=dict(in_channels=512))
