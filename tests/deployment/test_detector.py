"""Mask R-CNN through MMDeploy and ONNX Runtime, at the demo size."""
import numpy as np
import onnx
import torch

from mmeformer.deployment import export_detector, load_model, verify_detector


def test_demo_detector_matches_pytorch_in_onnxruntime(load_cfg, config_path,
                                                      tmp_path):
    cfg = load_cfg('demo/maskrcnn_eformerv2_s0_shapes.py')
    deploy_cfg = config_path('deployment/instance-seg_onnxruntime_static.py')
    # Shapes on grey, like the demo set: detections to compare.
    image = np.full((256, 256, 3), 128, dtype=np.uint8)
    image[40:120, 60:140] = (220, 20, 60)
    checkpoint = str(tmp_path / 'det.pth')
    torch.manual_seed(0)
    torch.save({'state_dict': load_model(cfg).state_dict()}, checkpoint)
    path = export_detector(
        cfg,
        deploy_cfg,
        str(tmp_path / 'det.onnx'),
        checkpoint=checkpoint,
        shape=(256, 256),
        image=image)
    outputs = [o.name for o in onnx.load(path).graph.output]
    assert outputs == ['dets', 'labels', 'masks']
    worst = verify_detector(
        cfg,
        deploy_cfg,
        path,
        checkpoint=checkpoint,
        shape=(256, 256),
        image=image,
        score_thr=0.05)
    assert worst['num_dets'] > 0, 'nothing to compare'
