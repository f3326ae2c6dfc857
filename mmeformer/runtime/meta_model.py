"""The config's model on the ``meta`` device: built and wired, no memory.

Built on the ``meta`` device, a model has every name and shape but no
memory behind its tensors, so the tools build it before anything else to
find, before any dataset is read:

- arguments a module refuses (a bad ``out_indices`` or ``attn_ref_size``);
- a backbone and a neck that do not connect, e.g. ``out_indices`` giving
  three feature maps to an FPN set for four (the host fails with a bare
  ``AssertionError`` at the first iteration otherwise);
- what a checkpoint has to fit (see :mod:`.checkpoint_fit`).
"""
from typing import List, Sequence

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import MODELS

from .errors import ConfigError
from .hosts import Host

__all__ = ['build_meta_model', 'check_neck_inputs']


def build_meta_model(cfg: Config, host: Host) -> nn.Module:
    """Build ``cfg.model`` in ``host`` on the ``meta`` device.

    Args:
        cfg (Config): The final config.
        host (Host): Its host; its modules are registered here.

    Returns:
        nn.Module: The model; its weights are not initialised or loaded.

    Raises:
        ConfigError: If a module refuses its arguments.
    """
    host.register_modules()
    try:
        with torch.device('meta'):
            return MODELS.build(cfg.model)
    except (ValueError, TypeError, KeyError, AssertionError) as e:
        raise ConfigError(f'{cfg.filename}: the model cannot be built: '
                          f'{type(e).__name__}: {e}') from e


def _as_list(value) -> List:
    return list(value) if isinstance(value, Sequence) else [value]


def check_neck_inputs(model: nn.Module, cfg: Config) -> None:
    """Check that the neck takes the feature maps the backbone gives.

    Checked for backbones that declare ``out_channels``, as ours do.

    Args:
        model (nn.Module): The model from :func:`build_meta_model`.
        cfg (Config): Its config, for the message.

    Raises:
        ConfigError: If ``model.neck.in_channels`` differs from the
            channels of the backbone's outputs.
    """
    given = getattr(getattr(model, 'backbone', None), 'out_channels', None)
    wanted = getattr(getattr(model, 'neck', None), 'in_channels', None)
    if not (isinstance(given, Sequence) and isinstance(wanted, Sequence)):
        return
    if list(given) == list(wanted):
        return
    out_indices = cfg.model.backbone.get('out_indices')
    indices = (f' (model.backbone.out_indices={_as_list(out_indices)})'
               if out_indices is not None else '')
    example = ','.join(map(str, given))
    raise ConfigError(
        f'{cfg.filename}: the backbone gives {len(given)} feature maps with '
        f'{list(given)} channels{indices}, but model.neck.in_channels is '
        f'{list(wanted)}. Change them together, e.g. --cfg-options '
        f'model.neck.in_channels="[{example}]".')
