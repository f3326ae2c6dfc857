# EfficientFormer-L1, ImageNet-1K, 1000 epochs. Origin: the official README
# table (snap-research/EfficientFormer), "EfficientFormer-L1" trained for
# 1000 epochs (efficientformer_l1_1000d.pth), top-1 80.2; the recipe of
# eformer_l1_in1k.py run longer.
_base_ = './eformer_l1_in1k.py'

train_cfg = dict(max_epochs=1000)
