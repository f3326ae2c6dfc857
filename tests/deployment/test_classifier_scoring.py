"""Scoring an exported classifier on a generated classification set (the
logic of tools/deployment/test_backend.py for ``logits`` files)."""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmeformer.demo.shapes import generate_shape_classes
from mmeformer.deployment import build_export_model, export_onnx, load_model
from mmeformer.deployment.scoring import score_file
from mmeformer.deployment.scoring import test_inputs as first_test_images
from mmeformer.runtime import evaluate
from mmeformer.testing import randomize_weights

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: The V2-S0 classifier of the shapes classification set, at 96x96.
CONFIG = osp.join(REPO, 'configs/search/_base_/eformerv2_shapes_cls.py')
SIZE = 96


@pytest.fixture(scope='module')
def classifier_files(tmp_path_factory):
    """One test image per class (20), the config on them, weights with
    every path active and the static classifier file."""
    folder = tmp_path_factory.mktemp('classifier_files')
    root = str(folder / 'shapes_cls') + '/'
    generate_shape_classes(
        root, num_train=1, num_val=1, num_test=1, img_size=64)
    cfg = Config.fromfile(CONFIG)
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.dataset.data_root = root
        loader.num_workers = 0
        loader.persistent_workers = False
    config = str(folder / 'classifier.py')
    cfg.dump(config)
    torch.manual_seed(0)
    model = randomize_weights(load_model(cfg), seed=1).eval()
    # Random features share a large common part, so any random head gives
    # every image one class: centre and scale the head on these images'
    # features (logits of order one) so that the labels differ.
    images = first_test_images(cfg, model.data_preprocessor, num_images=20)
    with torch.no_grad():
        feats = model.extract_feat(images)[-1]
        scale = feats.std(0) * feats.shape[1]**0.5
        for layer in (model.head.head, model.head.dist_head):
            layer.weight.normal_().div_(scale)
            layer.bias.copy_(-layer.weight @ feats.mean(0))
    checkpoint = str(folder / 'model.pth')
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    path = export_onnx(
        build_export_model(cfg, 'classifier', checkpoint), (SIZE, SIZE),
        str(folder / 'classifier.onnx'))
    return dict(folder=folder, config=config, checkpoint=checkpoint, path=path)


def _predictions(path):
    with open(path, 'rb') as f:
        results = pickle.load(f)
    labels = np.array([int(r['pred_label']) for r in results])
    scores = np.stack([r['pred_score'].numpy() for r in results])
    return labels, scores


@pytest.fixture(scope='module')
def torch_results(classifier_files):
    """PyTorch's metrics (tools/test.py), labels and scores."""
    work = classifier_files['folder']
    metrics = evaluate(
        classifier_files['config'],
        classifier_files['checkpoint'],
        work_dir=str(work / 'torch'),
        out=str(work / 'torch.pkl'))
    return (metrics, ) + _predictions(work / 'torch.pkl')


@pytest.mark.parametrize('runtime', ['onnxruntime', 'openvino'])
def test_classifier_file_scores_as_pytorch(classifier_files, torch_results,
                                           runtime):
    """The classifier file gives PyTorch's labels, image for image, and its
    top-1, at fp32 in both runtimes."""
    files = classifier_files
    expected, labels, scores = torch_results
    assert len(labels) == 20
    # Random weights with every path active still predict several classes.
    assert len(np.unique(labels)) > 1
    out = files['folder'] / f'{runtime}.pkl'
    metrics = score_file(
        files['config'],
        files['path'],
        runtime=runtime,
        checkpoint=files['checkpoint'],
        work_dir=str(files['folder'] / runtime),
        out=str(out))
    assert metrics['deviation'] < 1e-4
    assert metrics['accuracy/top1'] == expected['accuracy/top1']
    file_labels, file_scores = _predictions(out)
    np.testing.assert_array_equal(file_labels, labels)
    np.testing.assert_allclose(file_scores, scores, rtol=0, atol=1e-4)
