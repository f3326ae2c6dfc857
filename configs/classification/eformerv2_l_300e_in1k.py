# EfficientFormerV2-L, ImageNet-1K, 300 epochs. Origin: the official README
# table (snap-research/EfficientFormer), row "EfficientFormerV2-L", top-1
# 83.3 after 300 epochs (the eformerv2_l_in1k.py recipe, shorter).
_base_ = './eformerv2_l_in1k.py'

train_cfg = dict(max_epochs=300)
