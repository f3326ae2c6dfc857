"""Adaptive gradient clipping (AGC) for any mmengine optimizer wrapper."""
import inspect
from typing import Optional

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper

from mmeformer.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class AGCOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Build an optimizer wrapper that clips gradients adaptively.

    Adds ``clip_grad=dict(type='agc', clip_factor=...)`` to the ``'norm'``
    and ``'value'`` types of :class:`mmengine.optim.OptimWrapper`: each
    gradient is clipped unit-wise (per output unit of a weight, whole for
    1-D parameters) so that its norm stays below ``clip_factor`` times the
    norm of the parameter, by timm's :func:`timm.utils.adaptive_clip_grad`
    (`Brock et al. 2021 <https://arxiv.org/abs/2102.06171>`_). The official
    EfficientFormer training clips this way (``--clip-mode agc
    --clip-grad 0.01``).

    Why a constructor rather than a wrapper class: the clipping must work
    with whichever wrapper the run ends up using, and that is not always the
    configured one. ``tools/train.py --amp`` turns an ``OptimWrapper`` into
    an ``AmpOptimWrapper``, and mmengine does the same on NPUs. Both
    wrappers clip through the same ``clip_func(params, **clip_grad_kwargs)``
    call, after unscaling the gradients under AMP, so the constructor builds
    the configured wrapper without ``clip_grad`` and gives it AGC as its
    clipping function. Other ``clip_grad`` types are left to the wrapper, and
    ``paramwise_cfg`` works as in
    :class:`~mmengine.optim.DefaultOptimWrapperConstructor`.

    Args:
        optim_wrapper_cfg (dict): The optimizer wrapper config, with
            ``clip_grad=dict(type='agc', clip_factor=0.01)`` to clip
            adaptively. ``eps`` (the smallest parameter norm, default 1e-3)
            and ``norm_type`` (default 2.0) are accepted too.
        paramwise_cfg (dict, optional): Parameter-wise options, see
            :class:`~mmengine.optim.DefaultOptimWrapperConstructor`.
            Defaults to None.

    Example:
        >>> optim_wrapper = dict(
        ...     constructor='mmeformer.AGCOptimWrapperConstructor',
        ...     optimizer=dict(type='AdamW', lr=1e-3),
        ...     clip_grad=dict(type='agc', clip_factor=0.01))
    """

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        optim_wrapper_cfg = optim_wrapper_cfg.copy()
        clip_grad = optim_wrapper_cfg.get('clip_grad')
        self.clip_func = None
        self.agc_kwargs = None
        if isinstance(clip_grad, dict) and clip_grad.get('type') == 'agc':
            # Imported here: timm takes seconds to import, which only the
            # runs that clip adaptively should pay (this module is imported
            # by every tool).
            from timm.utils import adaptive_clip_grad
            self.clip_func = adaptive_clip_grad
            kwargs = {k: v for k, v in clip_grad.items() if k != 'type'}
            try:
                if 'clip_factor' not in kwargs:
                    raise TypeError('clip_factor is missing')
                arguments = inspect.signature(adaptive_clip_grad).bind(
                    None, **kwargs)
            except TypeError as e:
                raise ValueError(
                    f'optim_wrapper.clip_grad={dict(clip_grad)}: {e}. '
                    "type='agc' takes clip_factor (0.01 in the official "
                    'recipe), and optionally eps and norm_type') from None
            arguments.apply_defaults()
            # All but `parameters`: a non-empty dict, which is what makes
            # the wrappers clip at all.
            self.agc_kwargs = dict(list(arguments.arguments.items())[1:])
            del optim_wrapper_cfg['clip_grad']
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def __call__(self, model: nn.Module) -> OptimWrapper:
        optim_wrapper = super().__call__(model)
        if self.clip_func is not None:
            optim_wrapper.clip_func = self.clip_func
            optim_wrapper.clip_grad_kwargs = self.agc_kwargs
        return optim_wrapper
