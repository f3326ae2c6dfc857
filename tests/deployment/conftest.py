"""Shared fixtures of the deployment tests."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import mmeformer  # noqa: F401

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
