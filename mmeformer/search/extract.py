"""A subnet of a supernet as a plain EfficientFormerV2 model: its weights,
and a config file plus a checkpoint that the tools take."""
import copy
import os.path as osp
import pprint
from collections import OrderedDict
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config

from mmeformer.models.backbones import EfficientFormerV2Supernet
from mmeformer.models.backbones.efficientformer_v2_supernet import \
    slice_state_dict
from mmeformer.utils import atomic_torch_save, atomic_write_bytes

__all__ = ['extract_subnet', 'subnet_model_config', 'write_subnet']

#: Keys of the supernet classifier that a plain classifier does not take.
SUPERNET_ONLY_KEYS = ('num_random', )
#: Keys of a supernet classifier trained with a teacher (or configured for
#: one): its subnets are ``DistillationImageClassifier``s.
DISTILLATION_KEYS = ('teacher', 'distillation_type', 'distillation_alpha',
                     'distillation_tau')


def _supernet_of(model: nn.Module) -> Tuple[EfficientFormerV2Supernet, str]:
    if isinstance(model, EfficientFormerV2Supernet):
        return model, ''
    backbone = getattr(model, 'backbone', None)
    if isinstance(backbone, EfficientFormerV2Supernet):
        return backbone, 'backbone.'
    raise TypeError('Expected an EfficientFormerV2Supernet or a model whose '
                    f'backbone is one, got {type(model).__name__}')


def subnet_model_config(model_cfg: dict,
                        arch: dict,
                        subnet_type: Optional[str] = None) -> dict:
    """The model config of a subnet, from its supernet model's config.

    The backbone becomes an ``mmeformer.EfficientFormerV2`` of ``arch``
    with the supernet's other arguments, and the head's ``in_channels``
    the last stage's width. A classifier supernet (a
    ``SandwichImageClassifier``) becomes ``subnet_type``.

    Args:
        model_cfg (dict): The supernet's ``cfg.model`` (a supernet backbone
            config, or a model config with one as ``backbone``).
        arch (dict): The arch.
        subnet_type (str, optional): The classifier type. Defaults to
            ``'mmeformer.DistillationImageClassifier'`` for a supernet
            configured with a teacher (the ImageNet recipe's, whose
            settings it keeps), else ``'ImageClassifier'`` (MMPretrain's).

    Returns:
        dict: The subnet's model config.
    """
    cfg = copy.deepcopy(dict(model_cfg))
    backbone = cfg.get('backbone', cfg)
    backbone.pop('space', None)
    backbone['type'] = 'mmeformer.EfficientFormerV2'
    backbone['arch'] = copy.deepcopy(arch)
    if 'backbone' not in cfg:
        return backbone
    if subnet_type is None:
        subnet_type = ('mmeformer.DistillationImageClassifier' if any(
            key in cfg for key in DISTILLATION_KEYS) else 'ImageClassifier')
    cfg['type'] = subnet_type
    for key in SUPERNET_ONLY_KEYS:
        cfg.pop(key, None)
    if isinstance(cfg.get('head'), dict) and 'in_channels' in cfg['head']:
        cfg['head']['in_channels'] = arch['channels'][-1]
    return cfg


def extract_subnet(
    model: nn.Module,
    arch: dict,
    target: Optional[nn.Module] = None
) -> Tuple['OrderedDict[str, torch.Tensor]', dict]:
    """The weights of ``arch`` as a plain model.

    Args:
        model (nn.Module): An :class:`EfficientFormerV2Supernet`, or a
            classifier whose backbone is one (its head is sliced to the last
            stage's width).
        arch (dict): An arch of the supernet's space.
        target (nn.Module, optional): The plain classifier of ``arch`` (on
            any device, ``meta`` included), for a classifier supernet; its
            names and shapes are those returned. Not needed for a backbone.

    Returns:
        tuple[OrderedDict, dict]: The state dict (loads strictly into an
        ``EfficientFormerV2`` of the arch, or into ``target``) and the arch
        normalised by the space.

    Raises:
        ArchOutsideSpaceError: If ``arch`` is not in the space.
    """
    supernet, prefix = _supernet_of(model)
    arch = supernet.set_subnet(arch)
    if not prefix:
        return supernet.subnet_state_dict(), arch
    if target is None:
        raise ValueError('extract_subnet needs the target classifier of a '
                         'classifier supernet')
    return slice_state_dict(model.state_dict(), target.state_dict()), arch


def write_subnet(cfg: Config,
                 model: nn.Module,
                 arch: dict,
                 out_dir: str,
                 target: nn.Module,
                 name: str = 'subnet') -> Tuple[str, str]:
    """Write ``arch``'s config and checkpoint into ``out_dir``.

    The config inherits ``cfg``'s file (data, schedule, runtime) and
    replaces its model with the plain subnet's, and the sandwich model
    wrapper with mmengine's default; its ``load_from`` is the checkpoint,
    so ``tools/train.py`` (and ``tools/dist_train.sh``) fine-tunes it, and
    ``tools/test.py`` and ``tools/deployment/pytorch2onnx.py`` take both
    files. Both are written atomically.

    Args:
        cfg (Config): The supernet's config (read from a file).
        model (nn.Module): The supernet model, its BatchNorms recalibrated
            for ``arch``.
        arch (dict): The arch.
        out_dir (str): An existing folder.
        target (nn.Module): The plain model of ``arch`` (e.g. built on
            ``meta`` from :func:`subnet_model_config`).
        name (str): Stem of both files. Defaults to 'subnet'.

    Returns:
        tuple[str, str]: The config and checkpoint paths.
    """
    state_dict, arch = extract_subnet(model, arch, target)
    config_path = osp.join(out_dir, f'{name}.py')
    ckpt_path = osp.join(out_dir, f'{name}.pth')
    atomic_torch_save(
        dict(state_dict=state_dict, meta=dict(arch=arch)), ckpt_path)
    base = osp.relpath(osp.abspath(cfg.filename), osp.abspath(out_dir))
    model_cfg = subnet_model_config(cfg.model.to_dict(), arch)
    model_cfg['_delete_'] = True
    lines = [
        f'# The subnet {name} of the supernet of {osp.basename(cfg.filename)}'
        ', extracted with its weights',
        '# (mmeformer.search.write_subnet): a plain EfficientFormerV2.',
        f'_base_ = {base!r}',
        '',
        f'model = {pprint.pformat(model_cfg, sort_dicts=False)}',
        '# A plain model: mmengine\'s data-parallel wrapper.',
        'model_wrapper_cfg = None',
        '',
        f'load_from = {osp.abspath(ckpt_path)!r}',
        '',
    ]
    atomic_write_bytes(config_path, '\n'.join(lines).encode())
    return config_path, ckpt_path
