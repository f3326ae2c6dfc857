# Semantic FPN at any batch and input size; the attention biases are resized
# inside the graph, as PyTorch resizes them.
_base_ = ['./_base_/segmentation.py']
onnx_config = dict(
    dynamic_axes=dict(
        input=dict({
            0: 'batch',
            2: 'height',
            3: 'width'
        }),
        output=dict({
            0: 'batch',
            2: 'height',
            3: 'width'
        })))
