"""Mask R-CNN through MMDeploy and ONNX Runtime against PyTorch, on shapes
images, with weights that exercise every path."""
import os.path as osp

import onnx
import pytest
import torch
from mmcv.ops import batched_nms as mmcv_batched_nms
from mmdeploy.apis.onnx import export
from mmdeploy.core import RewriterContext
from mmengine.config import Config

from mmeformer.demo import generate_shapes
from mmeformer.deployment import (export_detector, load_model, mmdeploy_compat,
                                  verify_detector)
from mmeformer.deployment.mmdet_rewriters import batched_nms
from mmeformer.deployment.runtimes import onnxruntime_session
from mmeformer.runtime import SetupError
from mmeformer.testing import randomize_weights

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo', 'maskrcnn_eformerv2_s0_shapes.py')
DEPLOY = osp.join(REPO, 'configs', 'deployment',
                  'instance-seg_onnxruntime_{}.py')


class _NMS(torch.nn.Module):
    """:func:`batched_nms` as a module, for export."""

    def __init__(self, max_num):
        super().__init__()
        self.max_num = max_num

    def forward(self, boxes, scores, groups, considered):
        return batched_nms(boxes, scores, groups, considered, 0.5,
                           self.max_num)


@pytest.mark.parametrize('runtime', ['pytorch', 'onnxruntime'])
def test_batched_nms_is_mmcvs_per_image(runtime, tmp_path):
    """Each image keeps what mmcv's batched_nms keeps of its considered
    boxes (groups apart), by score, then rows of zeros and group -1."""
    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(2, 40, 2, generator=generator) * 100
    wh = 5 + torch.rand(2, 40, 2, generator=generator) * 30
    # Every box has a copy 1 px away in the next group: groups apart, both
    # are kept.
    boxes = torch.cat([xy, xy + wh], -1)
    boxes = torch.cat([boxes, boxes + 1], 1)
    groups = torch.randint(0, 3, (2, 40), generator=generator)
    groups = torch.cat([groups, (groups + 1) % 3], 1)
    scores = torch.rand(2, 80, generator=generator)
    considered = scores > 0.3
    considered[1, 10:] = False  # fewer boxes in the second image
    inputs, max_num = (boxes, scores, groups, considered), 12
    if runtime == 'pytorch':
        with RewriterContext(backend='onnxruntime'):
            dets, kept = _NMS(max_num)(*inputs)
    else:
        names = ['boxes', 'scores', 'groups', 'considered']
        with mmdeploy_compat():
            export(
                _NMS(max_num),
                inputs,
                str(tmp_path / 'nms'),
                backend='onnxruntime',
                input_names=names,
                output_names=['dets', 'kept_groups'])
        session = onnxruntime_session(str(tmp_path / 'nms.onnx'))
        feeds = {name: x.numpy() for name, x in zip(names, inputs)}
        outputs = session.run(None, feeds)
        dets, kept = map(torch.from_numpy, outputs)
    assert dets.shape[:2] == kept.shape and dets.shape[1] <= max_num + 1
    lengths = []
    for i in range(2):
        mask = considered[i]
        ref, keep = mmcv_batched_nms(boxes[i][mask], scores[i][mask],
                                     groups[i][mask],
                                     dict(type='nms', iou_threshold=0.5))
        n = min(len(ref), max_num)
        lengths.append(n)
        torch.testing.assert_close(dets[i, :n], ref[:n])
        assert torch.equal(kept[i, :n], groups[i][mask][keep[:n]])
        assert not dets[i, n:].any() and (kept[i, n:] == -1).all()
    assert lengths[0] == max_num > lengths[1]


@pytest.mark.parametrize('backend, package', [('onnxruntime', 'mmeformer'),
                                              ('openvino', 'mmdeploy')])
def test_rewriters_replace_mmdeploys_for_onnxruntime(backend, package):
    """Ours for ONNX Runtime, MMDeploy's own for other backends."""
    import mmdeploy.codebase.mmdet.models  # noqa: F401 (MMDeploy's)
    from mmdet.models.dense_heads import RPNHead
    from mmdet.models.roi_heads.bbox_heads import BBoxHead
    with RewriterContext(backend=backend):
        rewritten = [RPNHead.predict_by_feat, BBoxHead.predict_by_feat]
    for function in rewritten:
        assert f'/{package}/' in function.__code__.co_filename


def test_unexportable_nms_is_refused(tmp_path):
    cfg = Config.fromfile(DEMO)
    cfg.model.test_cfg.rcnn.nms = dict(type='soft_nms', iou_threshold=0.5)
    output = tmp_path / 'det.onnx'
    with pytest.raises(SetupError, match=r"rcnn\.nms=.*soft_nms.*type='nms'"):
        export_detector(cfg, DEPLOY.format('static'), str(output))
    assert not output.exists()


def confident_weights(model, scale=3.):
    """Every path active (:func:`randomize_weights`), and class and mask
    logits spread as a trained head's are: with the default
    initialisation the class scores of many RoIs agree to 1e-3 (ten of the
    20 best detections scored 0.272), so that their order is decided by
    rounding, and most masks are near-empty; the last layers of the box and
    mask heads scaled by ``scale`` spread them."""
    randomize_weights(model, seed=0)
    roi_head = model.roi_head
    with torch.no_grad():
        for layer in (roi_head.bbox_head.fc_cls,
                      roi_head.mask_head.conv_logits):
            layer.weight.mul_(scale)
    return model


def test_opset_before_aligned_roi_align_is_refused(tmp_path):
    output = tmp_path / 'det.onnx'
    with pytest.raises(SetupError, match='opset 11 .* RoiAlign .* opset 16'):
        export_detector(
            Config.fromfile(DEMO),
            DEPLOY.format('static'),
            str(output),
            opset_version=11)
    assert not output.exists()


@pytest.fixture(scope='module')
def demo_detector(tmp_path_factory):
    """The demo Mask R-CNN (keeping the COCO configs' 100 detections per
    image, so that every class of a RoI is compared) with confident
    weights, exported static at 256x256 and dynamic, and two held-out
    shapes images."""
    folder = tmp_path_factory.mktemp('detector')
    root = str(folder / 'shapes')
    generate_shapes(root, num_train=1, num_val=2)
    images = [
        osp.join(root, 'images', 'validation', f'shapes_val_00000{i}.jpg')
        for i in range(2)
    ]
    cfg = Config.fromfile(DEMO)
    cfg.model.test_cfg.rcnn.max_per_img = 100
    torch.manual_seed(1)
    model = confident_weights(load_model(cfg))
    checkpoint = str(folder / 'det.pth')
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    files = {}

    def export(kind):
        """The file of ``kind``, exported on first use."""
        if kind not in files:
            files[kind] = export_detector(
                cfg,
                DEPLOY.format(kind),
                str(folder / f'{kind}.onnx'),
                checkpoint=checkpoint,
                shape=(256, 256),
                image=images[0])
        return files[kind]

    return cfg, checkpoint, images, export


@pytest.mark.slow
def test_nothing_to_compare_fails(demo_detector):
    cfg, checkpoint, images, export = demo_detector
    outputs = [o.name for o in onnx.load(export('static')).graph.output]
    assert outputs == ['dets', 'labels', 'masks']
    with pytest.raises(AssertionError, match='nothing was compared'):
        verify_detector(
            cfg,
            DEPLOY.format('static'),
            export('static'),
            checkpoint=checkpoint,
            shape=(256, 256),
            image=images[0],
            score_thr=1.01)


@pytest.mark.slow
@pytest.mark.parametrize('kind, batch', [('static', 1), ('dynamic', 1),
                                         ('dynamic', 2)])
def test_detections_and_masks_match_pytorch(demo_detector, kind, batch):
    """Every detection the model keeps (score over test_cfg.rcnn.score_thr)
    has its partner: same class, box within 1 px, score within 0.01, mask
    IoU 0.95 or more."""
    cfg, checkpoint, images, export = demo_detector
    worst = verify_detector(
        cfg,
        DEPLOY.format(kind),
        export(kind),
        checkpoint=checkpoint,
        shape=(256, 256),
        image=images[0] if batch == 1 else images,
        score_thr=cfg.model.test_cfg.rcnn.score_thr)
    # Both sides, at least 10 detections per image, of every class.
    assert worst['num_dets'] >= 2 * batch * 10
    assert worst['num_classes'] == len(cfg.classes)
    assert worst['box_diff'] < 1e-3 and worst['score_diff'] < 1e-5
    assert 0.95 <= worst['mask_iou'] <= 1
