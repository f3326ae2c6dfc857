"""Mask R-CNN through MMDeploy and ONNX Runtime, at the demo size."""
import os.path as osp

import numpy as np
import onnx
import pytest
import torch
from mmengine.config import Config

from mmeformer.deployment import export_detector, load_model, verify_detector

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def demo_detector(tmp_path_factory):
    """The demo Mask R-CNN exported static at 256x256, and its inputs."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'demo', 'maskrcnn_eformerv2_s0_shapes.py'))
    deploy_cfg = osp.join(REPO, 'configs', 'deployment',
                          'instance-seg_onnxruntime_static.py')
    folder = tmp_path_factory.mktemp('detector')
    # Shapes on grey, like the demo set: detections to compare.
    image = np.full((256, 256, 3), 128, dtype=np.uint8)
    image[40:120, 60:140] = (220, 20, 60)
    checkpoint = str(folder / 'det.pth')
    torch.manual_seed(0)
    torch.save({'state_dict': load_model(cfg).state_dict()}, checkpoint)
    inputs = dict(checkpoint=checkpoint, shape=(256, 256), image=image)
    path = export_detector(cfg, deploy_cfg, str(folder / 'det.onnx'), **inputs)
    return cfg, deploy_cfg, path, inputs


def test_nothing_to_compare_fails(demo_detector):
    cfg, deploy_cfg, path, inputs = demo_detector
    outputs = [o.name for o in onnx.load(path).graph.output]
    assert outputs == ['dets', 'labels', 'masks']
    with pytest.raises(AssertionError, match='nothing was compared'):
        verify_detector(cfg, deploy_cfg, path, score_thr=1.01, **inputs)


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason='known mismatch: a 0.255 detection of these weights has no '
    'partner within 1 px in ONNX Runtime (the closest, of equal score, is '
    '40 px away), with the previous static bias form too; see '
    'docs/deployment.md')
def test_detections_and_masks_match_pytorch(demo_detector):
    cfg, deploy_cfg, path, inputs = demo_detector
    worst = verify_detector(cfg, deploy_cfg, path, score_thr=0.05, **inputs)
    assert worst['num_dets'] > 0
    assert 0.95 <= worst['mask_iou'] <= 1
