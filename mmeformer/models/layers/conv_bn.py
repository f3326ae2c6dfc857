"""The convolution + BatchNorm unit every EfficientFormer conv uses."""
import warnings
from typing import Optional

from mmcv.cnn import ConvModule


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
    store it, and folding absorbs it anyway.

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
        return ConvModule(
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
