# ONNX export and ONNX Runtime backend shared by the MMDeploy deploy configs.
# The TorchScript exporter writes opsets 11-20; 11 is MMDeploy's own default
# and what its ONNX Runtime custom ops (RoIAlign, NMS) are built for.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=11,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['output'],
    input_shape=None,
    optimize=True)
backend_config = dict(type='onnxruntime')
