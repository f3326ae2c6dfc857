"""Loading a ``Pretrained`` checkpoint into a backbone, dense start included.

The dense configs start their backbone from an ImageNet classifier file
(``init_cfg=dict(type='Pretrained', prefix='backbone.', ...)``), which fits a
dense backbone only in part, by design:

- its attention-bias tables are learned for 224 inputs, the backbone's for
  ``attn_ref_size`` (800 for detection, 512 for segmentation). The official
  dense models start these tables at zero (their ImageNet biases were
  discarded), so they start at zero here too;
- its final norm (``norm.*``) has no counterpart in a dense backbone;
- the V1 dense backbone's output norms (``out_norms.*``) are new.

mmengine's loader would print a size mismatch per table and the keys on
either side, which reads like a failure. :func:`load_pretrained` says what
happened in one line instead. Any other difference, e.g. a classifier of
another variant, goes to mmengine's loader unchanged and is reported in full.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model.weight_init import update_init_info
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict

__all__ = ['load_pretrained']

CONVERTER = 'tools/model_converters/efficientformer_to_mmeformer.py'


def _select(state_dict: Dict[str, torch.Tensor], filename: str,
            prefix: Optional[str]) -> 'OrderedDict[str, torch.Tensor]':
    """The tensors a module loads, named as in the module.

    As mmengine's ``PretrainedInit``: those under ``prefix`` with it
    stripped, or all of them without the ``module.`` of wrapped models.
    """
    if prefix is None:
        return OrderedDict(
            (re.sub(r'^module\.', '', k), v) for k, v in state_dict.items())
    prefix = prefix if prefix.endswith('.') else prefix + '.'
    selected = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                           if k.startswith(prefix))
    if not selected:
        raise ValueError(f'{filename} holds no tensor named {prefix}*; '
                         'check init_cfg.prefix and init_cfg.checkpoint')
    return selected


def _grid_text(size) -> str:
    return 'x'.join(str(s) for s in size)


def load_pretrained(backbone: nn.Module,
                    filename: str,
                    prefix: Optional[str] = None,
                    map_location: str = 'cpu') -> None:
    """Load ``filename`` into ``backbone`` as ``Pretrained`` does.

    Bias tables of another reference grid (same number of heads, other
    number of offsets), a final norm the backbone lacks and output norms
    the file lacks are the intended partial start of a dense backbone: the
    tables start at zero, the others keep their initialisation, and one
    line says so. If any other tensor does not fit, nothing is adapted and
    mmengine reports every difference.

    Args:
        backbone (nn.Module): An EfficientFormer backbone.
        filename (str): The checkpoint (any path mmengine can read).
        prefix (str, optional): Load the tensors named ``<prefix>*``, e.g.
            ``'backbone.'`` for a classifier file. Defaults to None (all).
        map_location (str): Where tensors are loaded. Defaults to 'cpu'.
    """
    print_log(
        f'load {prefix} in model from: {filename}'
        if prefix else f'load model from: {filename}',
        logger='current')
    checkpoint = CheckpointLoader.load_checkpoint(
        filename, map_location=map_location, logger='current')
    state_dict = _select(
        checkpoint.get('state_dict', checkpoint), filename, prefix)
    own = backbone.state_dict()

    def fits(key: str) -> bool:
        return key not in own or state_dict[key].shape == own[key].shape

    restarted = [
        k for k in state_dict
        if k.endswith('.attn_bias.table') and not fits(k) and
        state_dict[k].dim() == 2 and state_dict[k].shape[0] == own[k].shape[0]
    ]
    mismatched = [k for k in state_dict if not fits(k) and k not in restarted]
    unused_norm: List[str] = [] if getattr(backbone, 'final_norm', True) else [
        k for k in state_dict if k.startswith('norm.') and k not in own
    ]
    new_out_norms = [
        k for k in own if k.startswith('out_norms.') and k not in state_dict
    ]
    intended = not mismatched and (restarted or unused_norm or new_out_norms)
    if intended:
        for key in restarted:
            state_dict[key] = torch.zeros_like(own[key])
        for key in unused_norm:
            del state_dict[key]
        # Their own initial values, so that they are not reported missing.
        for key in new_out_norms:
            state_dict[key] = own[key]
    load_state_dict(backbone, state_dict, strict=False, logger='current')
    if intended:
        print_log(
            _describe_start(backbone, filename, checkpoint, restarted,
                            unused_norm, new_out_norms),
            logger='current')
    if hasattr(backbone, '_params_init_info'):
        update_init_info(
            backbone, init_info=f'Pretrained: load from {filename}')


def _describe_start(backbone: nn.Module, filename: str, checkpoint: dict,
                    restarted: List[str], unused_norm: List[str],
                    new_out_norms: List[str]) -> str:
    """One line on the dense start of ``backbone`` from ``filename``."""
    name = type(backbone).__name__
    parts = []
    if restarted:
        meta = checkpoint.get('meta')
        size = meta.get('attn_ref_size') if isinstance(meta, dict) else None
        learned = f'{_grid_text(size)} inputs' if size else (
            'another input size')
        target = _grid_text(backbone.ref_size)
        parts.append(
            f'{len(restarted)} attention-bias tables of {filename} were '
            f'learned for {learned} and start at zero for attn_ref_size '
            f'{target}')
    if unused_norm:
        parts.append('its final norm (norm.*) is not used')
    if new_out_norms:
        parts.append('the output norms (out_norms.*) start from their '
                     'initialisation')
    line = f'{name} init: ' + '; '.join(parts) + (
        ', as in the official dense models.')
    if restarted:
        line += (f' {CONVERTER} --attn-ref-size {target} writes a file for '
                 'this size (--dense-bias resize to resize the ImageNet '
                 'tables instead).')
    return line
