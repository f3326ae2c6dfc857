# Mask R-CNN at any batch and input size; the attention biases are resized
# inside the graph, as PyTorch resizes them.
_base_ = ['./_base_/instance-seg.py']
onnx_config = dict(
    dynamic_axes=dict(
        input=dict({
            0: 'batch',
            2: 'height',
            3: 'width'
        }),
        dets=dict({
            0: 'batch',
            1: 'num_dets'
        }),
        labels=dict({
            0: 'batch',
            1: 'num_dets'
        }),
        masks=dict({
            0: 'batch',
            1: 'num_dets'
        })))
