"""INT8 quantization of exported files with NNCF; the files come from
shapes_files.py."""
import os
import os.path as osp

import pytest
import torch
from mmseg.models import SegDataPreProcessor
from shapes_files import SIZE

from mmeformer.deployment.quantize import (ModelInputs, quantize_file,
                                           quantize_network)
from mmeformer.deployment.runtimes import is_quantized
from mmeformer.deployment.scoring import score_file
from mmeformer.runtime import SetupError


@pytest.mark.slow
def test_quantize_and_score(segmentor_files, tmp_path):
    """A few calibration images give an INT8 IR that the scoring tool runs;
    the accuracy control runs the config's evaluator with the heads of a
    backbone file in PyTorch."""
    files = segmentor_files
    output = str(tmp_path / 'segmentor_int8.xml')
    result = quantize_file(
        files['config'], files['segmentor'], output, num_samples=2)
    assert result == dict(kind='segmentor', num_samples=2, output=output)
    assert is_quantized(output, 'openvino')
    metrics = score_file(
        files['config'],
        output,
        runtime='openvino',
        checkpoint=files['checkpoint'],
        work_dir=str(tmp_path / 'int8'))
    assert 0 <= metrics['mIoU'] <= 100
    # Quantized, so not float rounding away from PyTorch, yet close.
    assert 1e-4 < metrics['deviation'] < 0.5

    backbone = str(tmp_path / 'backbone_int8.onnx')
    result = quantize_file(
        files['config'],
        files['backbone'],
        backbone,
        checkpoint=files['checkpoint'],
        num_samples=2,
        ignored_types=['Softmax'],
        max_drop=100.)
    assert result['metric'] == 'mIoU'
    assert is_quantized(backbone, 'onnxruntime')
    with pytest.raises(SetupError, match="precision 'int8'"):
        score_file(
            files['config'],
            backbone,
            precision='fp32',
            checkpoint=files['checkpoint'])
    with pytest.raises(SetupError, match='quantized already'):
        quantize_file(files['config'], output, str(tmp_path / 'again.xml'))
    with pytest.raises(SetupError, match='--runtime openvino'):
        score_file(files['config'], output, runtime='onnxruntime')


def test_refusals(segmentor_files, tmp_path):
    """An empty calibration set or a wrong output name: an error, and
    nothing written."""
    files = segmentor_files
    empty = tmp_path / 'empty'
    for folder in ('images/training', 'annotations/training'):
        os.makedirs(empty / folder)
    output = str(tmp_path / 'int8.xml')
    with pytest.raises(SetupError, match='calibration set .* is empty'):
        quantize_file(
            files['config'],
            files['segmentor'],
            output,
            cfg_options={
                'train_dataloader.dataset.data_root': str(empty) + '/'
            })
    with pytest.raises(SetupError, match=r'\.xml\) or an ONNX QDQ'):
        quantize_file(files['config'], files['segmentor'],
                      str(tmp_path / 'int8.bin'))
    assert os.listdir(tmp_path) == ['empty']
    assert not osp.exists(output)


def test_calibration_size_refused():
    """A calibration image of another size than the file's input."""
    preprocessor = SegDataPreProcessor(mean=[0.] * 3, std=[1.] * 3)
    transform = ModelInputs(preprocessor, (None, 3, SIZE, SIZE))
    batch = dict(inputs=[torch.zeros(3, SIZE, SIZE)])
    assert transform(batch)['input'].shape == (1, 3, SIZE, SIZE)
    with pytest.raises(
            SetupError,
            match='gives an input of 1x3x96x64, the '
            'file takes \\?x3x64x64'):
        transform(dict(inputs=[torch.zeros(3, 96, SIZE)]))


def test_quantize_network_needs_samples(segmentor_files):
    """In-memory quantization without calibration inputs is refused."""
    import onnx
    with pytest.raises(SetupError, match='at least one calibration input'):
        quantize_network(onnx.load(segmentor_files['segmentor']), [])
