"""Scoring exported files on a config's test data (tools/test_backend.py)."""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmeformer.demo import generate_shapes
from mmeformer.deployment import build_export_model, export_onnx
from mmeformer.deployment.scoring import (file_kind, read_signature,
                                          score_file)
from mmeformer.deployment.wrappers import load_model
from mmeformer.runtime import SetupError, evaluate
from mmeformer.testing import randomize_weights

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SIZE = 64


def shapes_config(root: str, folder: str, size: int = SIZE,
                  num_classes: int = 4) -> str:
    """The demo Semantic FPN config on a generated set of ``size``-pixel
    images, written to ``folder``; returns its path."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/demo/fpn_eformerv2_s0_shapes.py'))
    cfg.model.data_preprocessor.size = (size, size)
    cfg.model.decode_head.num_classes = num_classes
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.dataset.data_root = root
        loader.num_workers = 0
        loader.persistent_workers = False
        for step in loader.dataset.pipeline:
            if step.type == 'Resize':
                step.scale = (size, size)
    path = osp.join(folder, f'fpn_{size}_{num_classes}.py')
    cfg.dump(path)
    return path


@pytest.fixture(scope='module')
def segmentor_files(tmp_path_factory):
    """A generated shapes set, the config, a checkpoint with every path
    active and its static segmentor and backbone files at 64x64."""
    folder = tmp_path_factory.mktemp('scoring')
    root = str(folder / 'shapes') + '/'
    generate_shapes(
        root, num_train=2, num_val=2, img_size=SIZE, min_size=16,
        max_size=28)
    config = shapes_config(root, str(folder))
    cfg = Config.fromfile(config)
    model = randomize_weights(load_model(cfg), seed=1)
    checkpoint = str(folder / 'model.pth')
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    files = {}
    for kind in ('segmentor', 'backbone'):
        files[kind] = export_onnx(
            build_export_model(cfg, kind, checkpoint), (SIZE, SIZE),
            str(folder / f'{kind}.onnx'))
    return dict(
        folder=folder, root=root, config=config, checkpoint=checkpoint,
        **files)


def _predictions(path):
    with open(path, 'rb') as f:
        return np.stack(
            [r['pred_sem_seg']['data'].numpy() for r in pickle.load(f)])


def test_file_kind():
    assert file_kind(['logits']) == 'classifier'
    assert file_kind(['feat0', 'feat1']) == 'backbone'
    assert file_kind(['dets', 'labels', 'masks']) == 'detector'
    with pytest.raises(SetupError, match='not a file of'):
        file_kind(['output'], 'x.onnx')


def test_scores_as_pytorch(segmentor_files):
    """The segmentor file (whole network) and the backbone file (heads in
    PyTorch) give PyTorch's predictions, pixel for pixel, and its mIoU."""
    files = segmentor_files
    work = files['folder']
    expected = evaluate(
        files['config'],
        files['checkpoint'],
        work_dir=str(work / 'torch'),
        out=str(work / 'torch.pkl'))
    reference = _predictions(work / 'torch.pkl')
    # Random weights with every path active still predict several classes.
    assert len(np.unique(reference)) > 1
    for kind in ('segmentor', 'backbone'):
        metrics = score_file(
            files['config'],
            files[kind],
            checkpoint=files['checkpoint'],
            work_dir=str(work / kind),
            out=str(work / f'{kind}.pkl'))
        assert metrics['deviation'] < 1e-4
        assert abs(metrics['mIoU'] - expected['mIoU']) < 0.01
        same = (_predictions(work / f'{kind}.pkl') == reference).mean()
        assert same > 0.999, kind


def test_refusals(segmentor_files, tmp_path):
    files = segmentor_files
    config, path = files['config'], files['segmentor']
    with pytest.raises(SetupError, match='does not exist'):
        score_file(config, str(tmp_path / 'missing.onnx'))
    with pytest.raises(SetupError, match='cannot run bf16 here'):
        score_file(config, path, precision='bf16')
    # Another input size: the test pipeline of this config gives 96x96.
    other_size = shapes_config(files['root'], str(tmp_path), size=96)
    with pytest.raises(SetupError, match=r'takes input of \?x3x64x64|'
                       r'takes input of 1x3x64x64'):
        score_file(other_size, path)
    # Another model: five classes instead of four.
    other_model = shapes_config(files['root'], str(tmp_path), num_classes=5)
    with pytest.raises(SetupError, match='is not a segmentor of'):
        score_file(other_model, path)
    # The heads of a backbone file need weights.
    with pytest.raises(SetupError, match='--checkpoint'):
        score_file(config, files['backbone'])
    inputs, outputs = read_signature(path)
    assert inputs == {'input': (1, 3, SIZE, SIZE)}
    assert list(outputs) == ['seg_logits']
