# The ImageNet-1K supernet of eformerv2_supernet_in1k.py without its
# RegNetY-16GF teacher, for training without the teacher's weights: the
# largest subnet learns the labels alone (both classifiers, head and
# dist_head), the others learn from it as before.
_base_ = './eformerv2_supernet_in1k.py'

model = dict(teacher=None)
