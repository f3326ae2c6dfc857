# Mask R-CNN end to end in ONNX: boxes with scores ("dets"), labels and
# per-detection mask logits ("masks", pasted onto the image in Python).
# The RPN and box-head NMS follow MMDetection's and take every value from
# the model's test_cfg (mmeformer.deployment.mmdet_rewriters); the
# thresholds below are MMDeploy's, for its rewriters of other detectors.
# Opset 16: MMDeploy writes RoIAlign as ONNX's RoiAlign, which only from
# opset 16 samples as mmcv's aligned RoIAlign does (half_pixel); with
# opset 11 it widens RoIs thinner than one feature cell to one cell.
_base_ = ['./onnxruntime.py']
onnx_config = dict(output_names=['dets', 'labels', 'masks'], opset_version=16)
codebase_config = dict(
    type='mmdet',
    task='ObjectDetection',
    model_type='end2end',
    post_processing=dict(
        score_threshold=0.05,
        confidence_threshold=0.005,
        iou_threshold=0.5,
        max_output_boxes_per_class=200,
        pre_top_k=5000,
        keep_top_k=100,
        background_label_id=-1,
        export_postprocess_mask=False))
