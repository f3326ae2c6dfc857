# EfficientFormer-L1, ImageNet-1K, 300 epochs, without distillation: the
# official recipe of eformer_l1_in1k.py without its RegNetY-16GF teacher,
# for training without the teacher's weights. Both classifiers (head and
# dist_head) learn the labels; expect lower accuracy than published.
_base_ = './eformer_l1_in1k.py'

model = dict(teacher=None)
