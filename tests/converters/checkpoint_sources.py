"""Source checkpoints built from the reference key manifests, and models.

The manifests in ``tests/data/checkpoint_keys`` (gzipped json, one entry
per variant) list every key and shape of the official, timm and mmpretrain
checkpoints of every variant. Source files are made of random
tensors with those names and shapes, so no downloaded weight is needed.
"""
import os.path as osp
from collections import OrderedDict

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MANIFESTS = osp.join(REPO, 'tests', 'data', 'checkpoint_keys')

#: Variant arch names, and their suffix in the manifest entry names.
V1_ARCHS = ('l1', 'l3', 'l7')
V2_ARCHS = ('s0', 's1', 's2', 'l')
MANIFEST_NAMES = dict({a: a
                       for a in V1_ARCHS}, **{a: f'v2_{a}'
                                              for a in V2_ARCHS})

#: Manifest file and entry prefix of each converter source.
SOURCE_MANIFESTS = {
    'official': ('official_cls', 'official_cls_'),
    'timm': ('timm', 'timm_'),
    'mmpretrain': ('mmpretrain', 'mmpretrain_'),
    'official-det': ('official_detection', 'official_detection_'),
    'official-seg': ('official_segmentation', 'official_segmentation_'),
}


def config_path(task: str, arch: str) -> str:
    """The package config of a task and variant."""
    model = f'eformer_{arch}' if arch in V1_ARCHS else f'eformerv2_{arch}'
    name = {
        'classification': f'classification/{model}_in1k.py',
        'detection': f'detection/maskrcnn_{model}_coco.py',
        'segmentation': f'segmentation/fpn_{model}_ade20k_40k.py',
    }[task]
    return osp.join(REPO, 'configs', name)


def build_from_config(task: str, arch: str) -> torch.nn.Module:
    """The model of a package config, on the ``meta`` device.

    Strict loading checks names and shapes before it copies anything, and a
    copy into a meta tensor is a no-op, so loading into this model tests
    exactly what strict loading tests, without the memory and initialisation
    time of the largest variants.
    """
    scope = {
        'classification': 'mmpretrain',
        'detection': 'mmdet',
        'segmentation': 'mmseg'
    }[task]
    cfg = Config.fromfile(config_path(task, arch))
    registry = {
        'mmpretrain': 'mmpretrain.registry',
        'mmdet': 'mmdet.registry',
        'mmseg': 'mmseg.registry'
    }[scope]
    models = __import__(registry, fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope), torch.device('meta'):
        return models.build(cfg.model).eval()


def random_tensors(shapes, seed=0) -> 'OrderedDict[str, torch.Tensor]':
    """Distinct random tensors of the given names and shapes.

    Index buffers and BatchNorm counters get integers, variances positive
    values, everything else normal noise, so that no two tensors are equal.
    """
    generator = torch.Generator().manual_seed(seed)
    tensors = OrderedDict()
    for i, (name, shape) in enumerate(shapes.items()):
        if name.endswith('num_batches_tracked'):
            tensors[name] = torch.tensor(1000 + i)
        elif 'attention_bias_idxs' in name:
            tensors[name] = torch.randint(
                0, 49, tuple(shape), generator=generator)
        elif name.endswith('running_var'):
            tensors[name] = torch.rand(tuple(shape), generator=generator) + 0.5
        else:
            tensors[name] = torch.randn(tuple(shape), generator=generator)
    return tensors


def offset_table(heads: int, grid: tuple, base: int = 0) -> torch.Tensor:
    """A ``(heads, h * w)`` attention-bias table whose value at offset
    ``(dy, dx)`` of head ``n`` is ``base + 100 * n + 10 * dy + dx``: every
    entry says where it came from."""
    n, dy, dx = torch.meshgrid(
        torch.arange(heads),
        torch.arange(grid[0]),
        torch.arange(grid[1]),
        indexing='ij')
    return (base + 100 * n + 10 * dy + dx).reshape(heads, -1).float()
