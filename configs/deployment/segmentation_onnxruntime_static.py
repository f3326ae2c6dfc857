# Semantic FPN at one input size (width, height), attention biases baked in
# as constants.
_base_ = ['./_base_/segmentation.py']
onnx_config = dict(input_shape=[512, 512])
