# EfficientFormer-L7, ImageNet-1K, 300 epochs. Origin: the official README
# table (snap-research/EfficientFormer), row "EfficientFormer-L7", top-1 83.3;
# drop path 0. as in its models/efficientformer.py (arXiv 2206.01191).
_base_ = './_base_/efficientformer_in1k.py'

model = dict(
    backbone=dict(arch='l7', drop_path_rate=0.), head=dict(in_channels=768))
