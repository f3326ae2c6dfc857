"""The stride-4 convolutional stem of EfficientFormer V1 and V2."""
import torch
import torch.nn as nn

from .conv_bn import conv_bn


class Stem(nn.Module):
    """Two stride-2 ``conv3x3 -> BN -> act`` units.

    Modified from ``stem`` of the `official repo
    <https://github.com/snap-research/EfficientFormer>`_.

    Args:
        in_channels (int): Input image channels.
        out_channels (int): Output channels; the first unit has half.
        act_cfg (dict): Activation config: ReLU in V1, GELU in V2.

    Example:
        >>> import torch
        >>> from mmeformer.models.layers import Stem
        >>> stem = Stem(3, 48, act_cfg=dict(type='ReLU'))
        >>> print(tuple(stem(torch.rand(1, 3, 224, 224)).shape))
        (1, 48, 56, 56)
    """

    def __init__(self, in_channels: int, out_channels: int,
                 act_cfg: dict) -> None:
        super().__init__()
        self.conv1 = conv_bn(
            in_channels, out_channels // 2, 3, stride=2, act_cfg=act_cfg)
        self.conv2 = conv_bn(
            out_channels // 2, out_channels, 3, stride=2, act_cfg=act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))
