# EfficientFormerV2-S2, ImageNet-1K, 300 epochs. Origin: the official README
# table (snap-research/EfficientFormer), row "EfficientFormerV2-S2", top-1
# 81.6 after 300 epochs (the eformerv2_s2_in1k.py recipe, shorter).
_base_ = './eformerv2_s2_in1k.py'

train_cfg = dict(max_epochs=300)
