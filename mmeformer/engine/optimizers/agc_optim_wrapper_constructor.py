"""Adaptive gradient clipping (AGC) for any mmengine optimizer wrapper."""
import inspect
from functools import partial
from typing import Callable, FrozenSet, Iterable, List, Optional

import torch
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

    A unit is what timm's unit-wise norm makes of a tensor's shape, so two
    layouts of the same parameter can clip differently: the official V2
    layer scales have shape ``(C, 1, 1)`` and are clipped per channel,
    while flat ``(C,)`` ones (ours, mmpretrain's ``LayerScale``) would be
    clipped as one vector. ``elementwise_keys`` names the parameters to
    clip one element per unit, as the official layout does.

    Args:
        optim_wrapper_cfg (dict): The optimizer wrapper config, with
            ``clip_grad=dict(type='agc', clip_factor=0.01)`` to clip
            adaptively. ``eps`` (the smallest parameter norm, default 1e-3)
            and ``norm_type`` (default 2.0) are accepted too, and
            ``elementwise_keys``: substrings of parameter names, as in
            ``paramwise_cfg.custom_keys``, whose parameters are clipped with
            every element a unit (e.g. ``['.ls1.weight', '.ls2.weight']``
            for the V2 layer scales). Each key must match a parameter.
        paramwise_cfg (dict, optional): Parameter-wise options, see
            :class:`~mmengine.optim.DefaultOptimWrapperConstructor`.
            Defaults to None.

    Example:
        >>> optim_wrapper = dict(
        ...     constructor='mmeformer.AGCOptimWrapperConstructor',
        ...     optimizer=dict(type='AdamW', lr=1e-3),
        ...     clip_grad=dict(
        ...         type='agc',
        ...         clip_factor=0.01,
        ...         elementwise_keys=['.ls1.weight', '.ls2.weight']))
    """

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        optim_wrapper_cfg = optim_wrapper_cfg.copy()
        clip_grad = optim_wrapper_cfg.get('clip_grad')
        self.clip_func = None
        self.agc_kwargs = None
        self.elementwise_keys: List[str] = []
        if isinstance(clip_grad, dict) and clip_grad.get('type') == 'agc':
            # Imported here: timm takes seconds to import, which only the
            # runs that clip adaptively should pay (this module is imported
            # by every tool).
            from timm.utils import adaptive_clip_grad
            self.clip_func = adaptive_clip_grad
            keys = clip_grad.get('elementwise_keys', [])
            if isinstance(keys, str) or not all(
                    isinstance(key, str) and key for key in keys):
                raise ValueError(
                    f'optim_wrapper.clip_grad.elementwise_keys={keys!r}: '
                    'give a list of non-empty parameter-name substrings, '
                    "e.g. ['.ls1.weight', '.ls2.weight']")
            self.elementwise_keys = list(keys)
            kwargs = {
                k: v
                for k, v in clip_grad.items()
                if k not in ('type', 'elementwise_keys')
            }
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
            clip_func = self.clip_func
            if self.elementwise_keys:
                clip_func = partial(
                    clip_with_element_units,
                    clip_func=clip_func,
                    element_units=self.match_elementwise(model))
            optim_wrapper.clip_func = clip_func
            optim_wrapper.clip_grad_kwargs = self.agc_kwargs
        return optim_wrapper

    def match_elementwise(self, model: nn.Module) -> FrozenSet[int]:
        """Ids of the parameters whose name contains an elementwise key.

        Args:
            model (nn.Module): The model the optimizer updates.

        Returns:
            frozenset[int]: ``id()`` of every matching parameter.
        """
        names = [name for name, _ in model.named_parameters()]
        unmatched = [
            key for key in self.elementwise_keys
            if not any(key in name for name in names)
        ]
        if unmatched:
            raise ValueError(
                f'optim_wrapper.clip_grad.elementwise_keys {unmatched} match '
                f'no parameter of {type(model).__name__}; remove them or use '
                'substrings of its parameter names')
        return frozenset(
            id(param) for name, param in model.named_parameters()
            if any(key in name for key in self.elementwise_keys))


def clip_with_element_units(params: Iterable[torch.Tensor],
                            clip_func: Callable, element_units: FrozenSet[int],
                            **kwargs) -> None:
    """Clip with ``clip_func``, every element of some parameters a unit.

    Each parameter in ``element_units`` is handed over as an ``(N, 1)`` view
    whose gradient is an ``(N, 1)`` view of its own, so that a unit-wise
    clipping function sees one unit per element and writes the clipped
    gradient back in place.

    Args:
        params (Iterable[Tensor]): Parameters with gradients.
        clip_func (Callable): Unit-wise clipping, e.g. timm's
            ``adaptive_clip_grad``.
        element_units (frozenset[int]): ``id()`` of the parameters to clip
            element by element.
        **kwargs: Passed to ``clip_func``.
    """
    views = []
    for param in params:
        if id(param) in element_units and param.grad is not None:
            view = param.detach().view(-1, 1)
            view.grad = param.grad.detach().view(-1, 1)
            param = view
        views.append(param)
    clip_func(views, **kwargs)
