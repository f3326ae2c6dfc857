"""Shared fixtures of the deployment tests."""
import os.path as osp

import pytest
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
