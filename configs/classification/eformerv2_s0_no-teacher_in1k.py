# EfficientFormerV2-S0, ImageNet-1K, 450 epochs, without distillation: the
# official recipe of eformerv2_s0_in1k.py without its RegNetY-16GF teacher,
# for training without the teacher's weights. Both classifiers (head and
# dist_head) learn the labels; expect lower accuracy than published.
_base_ = './eformerv2_s0_in1k.py'

model = dict(teacher=None)
