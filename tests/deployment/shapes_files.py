"""Exported files of the demo Semantic FPN on a tiny generated shapes set,
shared by the scoring and quantization tests (see conftest.py)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmeformer.demo import generate_shapes
from mmeformer.deployment import build_export_model, export_onnx
from mmeformer.deployment.wrappers import load_model
from mmeformer.testing import randomize_weights

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: Side of the generated images and of the static files.
SIZE = 64


def shapes_config(root: str,
                  folder: str,
                  size: int = SIZE,
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


@pytest.fixture(scope='package')
def segmentor_files(tmp_path_factory):
    """A generated shapes set (2 training, 2 test images), the config, a
    checkpoint with every path active and its static segmentor and backbone
    files at 64x64."""
    folder = tmp_path_factory.mktemp('shapes_files')
    root = str(folder / 'shapes') + '/'
    generate_shapes(
        root, num_train=2, num_val=2, img_size=SIZE, min_size=16, max_size=28)
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
        folder=folder,
        root=root,
        config=config,
        checkpoint=checkpoint,
        **files)
