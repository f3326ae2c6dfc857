# Mask R-CNN at one input size (width, height), attention biases baked in as
# constants. tools/deployment/pytorch2onnx.py --shape H W replaces the size.
_base_ = ['./_base_/instance-seg.py']
onnx_config = dict(input_shape=[1216, 800])
