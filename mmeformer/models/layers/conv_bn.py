"""The convolution + BatchNorm unit every EfficientFormer conv uses, and
its deploy-time fold."""
import warnings
from dataclasses import dataclass, field
from typing import List, Optional

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmcv.cnn import fuse_conv_bn as mmcv_fuse_conv_bn
from torch.nn.modules.batchnorm import _BatchNorm


def conv_bn(in_channels: int,
            out_channels: int,
            kernel_size: int = 1,
            stride: int = 1,
            groups: int = 1,
            act_cfg: Optional[dict] = None,
            act_first: bool = False) -> ConvModule:
    """Build a ``conv -> BN [-> act]`` (or ``act -> conv -> BN``) unit.

    Every such unit is a :class:`mmcv.cnn.ConvModule` with children ``conv``
    and ``bn``, which is what :func:`fuse_conv_bn` folds in deploy mode.
    The conv keeps its bias, as in the official models: their checkpoints
    store it, and folding absorbs it anyway. It also starts from PyTorch's
    default initialisation (uniform within ``1 / sqrt(fan_in)``, weight and
    bias), as every official convolution but the MLPs' 1x1s does, rather
    than from ConvModule's Kaiming-normal (fan_out, ReLU gain, zero bias).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Square kernel size, padded to keep the size at
            stride 1. Defaults to 1.
        stride (int): Convolution stride. Defaults to 1.
        groups (int): Convolution groups. Defaults to 1.
        act_cfg (dict, optional): Activation config, None for none.
            Defaults to None.
        act_first (bool): Put the activation before the convolution, as in
            the output projections of the V2 attentions. Defaults to False.

    Returns:
        ConvModule: The unit.
    """
    order = ('act', 'conv', 'norm') if act_first else ('conv', 'norm', 'act')
    with warnings.catch_warnings():
        # ConvModule warns about a conv bias before BN; it is deliberate here.
        warnings.filterwarnings('ignore', message='Unnecessary conv bias')
        unit = ConvModule(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=True,
            norm_cfg=dict(type='BN'),
            act_cfg=act_cfg,
            order=order)
    unit.conv.reset_parameters()
    return unit


@dataclass
class FusionReport:
    """What :func:`fuse_conv_bn` changed.

    Attributes:
        fused (list[str]): ``'conv_name <- bn_name'`` for every fold.
        unfused (list[str]): BatchNorm layers left in place because no conv
            directly precedes them (e.g. the V2 classifier's final norm).
    """
    fused: List[str] = field(default_factory=list)
    unfused: List[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.fused)

    def __str__(self) -> str:
        lines = [f'folded {len(self.fused)} BatchNorm layers into convs']
        lines += [f'  {entry}' for entry in self.fused]
        if self.unfused:
            lines.append(f'left {len(self.unfused)} BatchNorm layers: ' +
                         ', '.join(self.unfused))
        return '\n'.join(lines)


def fuse_conv_bn(module: nn.Module, prefix: str = '') -> FusionReport:
    """Fold the BN of every ``conv -> BN`` :class:`ConvModule` into its conv.

    Each fold replaces the BN with ``nn.Identity`` and rescales the conv
    with the BN's running statistics (mmcv's ``fuse_conv_bn``), so the
    module computes the same function in eval mode. Only
    :class:`ConvModule` units whose norm directly follows the conv are
    touched: the fold then cannot pair a BN with an unrelated conv that
    happens to be registered before it. Calling it again finds nothing.

    Args:
        module (nn.Module): Any module, e.g. a backbone or a whole model.
        prefix (str): Prepended to the names in the report.
            Defaults to ``''``.

    Returns:
        FusionReport: The folds made and the BN layers left.
    """
    report = FusionReport()
    units = list(module.named_modules(prefix=prefix.rstrip('.')))
    for name, unit in units:
        if (isinstance(unit, ConvModule) and isinstance(unit.norm, _BatchNorm)
                and unit.order.index('conv') < unit.order.index('norm')):
            mmcv_fuse_conv_bn(unit)
            dot = f'{name}.' if name else ''
            report.fused.append(f'{dot}conv <- {dot}{unit.norm_name}')
    report.unfused = [
        name for name, m in module.named_modules(prefix=prefix.rstrip('.'))
        if isinstance(m, _BatchNorm)
    ]
    return report
