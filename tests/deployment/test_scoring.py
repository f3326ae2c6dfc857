"""Scoring exported files on a config's test data (the logic of
tools/deployment/test_backend.py); the files come from shapes_files.py."""
import pickle

import numpy as np
import pytest
from shapes_files import SIZE, shapes_config

from mmeformer.deployment.scoring import file_kind, read_signature, score_file
from mmeformer.runtime import SetupError, evaluate


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


@pytest.mark.slow
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
    with pytest.raises(
            SetupError,
            match=r'takes input of \?x3x64x64|'
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
