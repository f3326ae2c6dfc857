"""Shared fixtures of the deployment tests."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
# The demo segmentor's files, shared by the scoring and quantization tests.
from shapes_files import segmentor_files  # noqa: F401

import mmeformer  # noqa: F401
from mmeformer.testing import randomize_weights

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture
def config_path():
    """Absolute path of ``configs/<name>``."""
    return lambda name: osp.join(REPO, 'configs', name)


@pytest.fixture
def load_cfg(config_path):
    """Read ``configs/<name>``."""
    return lambda name: Config.fromfile(config_path(name))


@pytest.fixture
def export_dynamic(tmp_path):
    """Export a module to ONNX with dynamic batch, height and width; returns
    the file's path."""

    def export(module, example, name='model.onnx'):
        path = str(tmp_path / name)
        with torch.no_grad():
            torch.onnx.export(
                module, (example, ),
                path,
                input_names=['input'],
                dynamic_axes={'input': {
                    0: 'batch',
                    2: 'height',
                    3: 'width'
                }},
                dynamo=False)
        return path

    return export


@pytest.fixture
def random_checkpoint(tmp_path):
    """Save weights of ``cfg``'s whole model with every path active
    (:func:`~mmeformer.testing.randomize_weights`): random attention-bias
    tables, layer scales of 0.1-0.5, BatchNorm statistics, as a converted
    checkpoint has. Returns the checkpoint's path."""

    def save(cfg, seed=0):
        from mmeformer.deployment import load_model
        torch.manual_seed(seed)
        model = randomize_weights(load_model(cfg), seed)
        path = str(tmp_path / f'random_{seed}.pth')
        torch.save({'state_dict': model.state_dict()}, path)
        return path

    return save
