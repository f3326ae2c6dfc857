"""init_model / inference_model in each host, on the demo-sized models.

Random weights, then a checkpoint the test saves: the host's data sample
comes back with the image's sizes, the saved weights give the same output,
and a checkpoint of another model is refused before the host loads it.
"""
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmpretrain.structures import DataSample
from mmseg.structures import SegDataSample

from mmeformer.apis import inference_model, init_model
from mmeformer.runtime import (CheckpointError, ConfigError,
                               MissingResourceError, UnknownHostError)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLASSIFICATION = osp.join(REPO, 'configs/classification/eformerv2_s0_in1k.py')
DETECTION = osp.join(REPO, 'configs/demo/maskrcnn_eformerv2_s0_shapes.py')
SEGMENTATION = osp.join(REPO, 'configs/demo/fpn_eformerv2_s0_shapes.py')
THREE_CLASSES = {'model.head.num_classes': 3}
HEIGHT, WIDTH = 48, 80


def random_image(seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


def save_checkpoint(model, path, classes):
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(dataset_meta=dict(classes=classes))), path)
    return str(path)


@pytest.fixture(scope='module')
def classifier_checkpoint(tmp_path_factory):
    """A V2-S0 classifier of three classes and its checkpoint."""
    model = init_model(CLASSIFICATION, cfg_options=THREE_CLASSES)
    path = tmp_path_factory.mktemp('cls') / 'cls.pth'
    return model, save_checkpoint(model, path, ['a', 'b', 'c'])


def test_classification(classifier_checkpoint, tmp_path):
    model, checkpoint = classifier_checkpoint
    assert type(model).__name__ == 'DistillationImageClassifier'
    assert not model.training
    image_file = str(tmp_path / 'image.png')
    mmcv.imwrite(random_image(), image_file)
    result = inference_model(model, image_file)
    assert isinstance(result, DataSample)
    assert result.pred_score.shape == (3, )
    assert result.ori_shape == (HEIGHT, WIDTH)

    loaded = init_model(
        CLASSIFICATION, checkpoint, device='cpu', cfg_options=THREE_CLASSES)
    [again] = inference_model(loaded, [image_file])
    torch.testing.assert_close(again.pred_score, result.pred_score)


@pytest.fixture(scope='module')
def segmentor():
    return init_model(SEGMENTATION)


@pytest.mark.parametrize('config', [SEGMENTATION, DETECTION])
def test_dense_hosts(config, segmentor, tmp_path):
    model = segmentor if config == SEGMENTATION else init_model(config)
    [result] = inference_model(model, [random_image()])
    assert result.ori_shape == (HEIGHT, WIDTH)
    if config == SEGMENTATION:
        assert isinstance(result, SegDataSample)
        assert result.pred_sem_seg.data.shape == (1, HEIGHT, WIDTH)
        # Background and the three shapes.
        assert result.seg_logits.data.shape == (4, HEIGHT, WIDTH)
        output = result.seg_logits.data
    else:
        assert isinstance(result, DetDataSample)
        instances = result.pred_instances
        assert instances.bboxes.shape[1] == 4
        assert instances.masks.shape[1:] == (HEIGHT, WIDTH)
        assert len(instances.scores) == len(instances.labels) > 0
        output = instances.bboxes

    classes = ['square', 'circle', 'triangle']
    checkpoint = save_checkpoint(model, tmp_path / 'model.pth', classes)
    loaded = init_model(config, checkpoint)
    assert loaded.dataset_meta['classes'] == classes
    again = inference_model(loaded, random_image())
    if config == SEGMENTATION:
        torch.testing.assert_close(again.seg_logits.data, output)
    else:
        torch.testing.assert_close(again.pred_instances.bboxes, output)


def test_checkpoint_of_another_model(classifier_checkpoint, segmentor,
                                     tmp_path):
    _, checkpoint = classifier_checkpoint
    with pytest.raises(CheckpointError) as info:
        init_model(SEGMENTATION, checkpoint)
    message = str(info.value)
    assert f'{checkpoint} does not fit the model of {SEGMENTATION}' in message
    assert 'missing keys' in message and 'strict=False' in message
    # The host loads what fits and leaves the rest as built.
    model = init_model(SEGMENTATION, checkpoint, strict=False)
    # The attention biases are learnt for other sizes and do not fit.
    saved = classifier_checkpoint[0].backbone.state_dict()
    fitting = {
        key: value
        for key, value in model.backbone.state_dict().items()
        if value.shape == saved[key].shape
    }
    assert len(fitting) > len(saved) / 2
    for key, value in fitting.items():
        torch.testing.assert_close(value, saved[key])
    # A file without mmengine's 'meta', as the converters write.
    bare = tmp_path / 'bare.pth'
    torch.save(dict(state_dict=segmentor.state_dict()), bare)
    model = init_model(SEGMENTATION, str(bare))
    torch.testing.assert_close(model.state_dict(), segmentor.state_dict())


def test_refused_input(tmp_path):
    with pytest.raises(MissingResourceError, match='missing.pth'):
        init_model(CLASSIFICATION, str(tmp_path / 'missing.pth'))
    with pytest.raises(ConfigError, match='no such config file'):
        init_model(str(tmp_path / 'missing.py'))
    config = Config(dict(default_scope='mmaction', model=dict(type='X')))
    with pytest.raises(UnknownHostError, match='mmaction'):
        init_model(config)
    with pytest.raises(ValueError, match='init_model'):
        inference_model(torch.nn.Linear(1, 1), random_image())


def test_missing_image(classifier_checkpoint, tmp_path):
    model, _ = classifier_checkpoint
    with pytest.raises(FileNotFoundError, match='no such image file'):
        inference_model(model, str(tmp_path / 'missing.jpg'))
