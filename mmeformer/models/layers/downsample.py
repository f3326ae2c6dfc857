"""The stride-2 downsample between two stages."""
from typing import Optional

import torch
import torch.nn as nn

from .conv_bn import conv_bn


class Downsample(nn.Module):
    """A stride-2 ``conv3x3 -> BN``, optionally plus a stride-2 attention.

    V1 and the first two V2 downsamples are the convolution alone; the V2
    downsample into the last stage adds an attention branch
    (``Attention4DDownsample``) whose output has the same shape.

    Modified from ``Embedding`` of the `official repo
    <https://github.com/snap-research/EfficientFormer>`_.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        attn (nn.Module, optional): Attention branch mapping the input to
            the output shape. Defaults to None.

    Example:
        >>> import torch
        >>> from mmeformer.models.layers import Downsample
        >>> down = Downsample(48, 96)
        >>> print(tuple(down(torch.rand(1, 48, 55, 55)).shape))
        (1, 96, 28, 28)
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 attn: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.conv = conv_bn(in_channels, out_channels, 3, stride=2)
        self.attn = attn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if self.attn is not None:
            out = out + self.attn(x)
        return out
