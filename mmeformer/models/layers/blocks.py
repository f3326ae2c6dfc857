"""The blocks of EfficientFormer V1 and V2 on NCHW maps: stem, downsample,
feed-forward networks and the residual meta block."""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer
from mmcv.cnn.bricks import DropPath
from mmengine.model import trunc_normal_init
from mmpretrain.models.utils import LayerScale

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


class ConvMlp(nn.Module):
    """Feed-forward network of 1x1 conv + BN units on NCHW maps.

    ``fc1 (conv1x1, BN, act) [-> mid (dw conv3x3, BN, act)] -> fc2 (conv1x1,
    BN)``. V1's Meta4D blocks use it without ``mid``, every V2 block with it.
    The 1x1 convolutions of ``fc1`` and ``fc2`` start from a truncated normal
    (std 0.02) with zero biases, as in the official models. The official
    ``mid`` is created after that initialisation and keeps PyTorch's default,
    as every :func:`conv_bn` unit does.

    Modified from ``Mlp`` of the `official repo
    <https://github.com/snap-research/EfficientFormer>`_.

    Args:
        in_channels (int): Input and output channels.
        hidden_channels (int): Hidden channels.
        act_cfg (dict): Activation config. Defaults to ``dict(type='GELU')``.
        mid_conv (bool): Add the depthwise 3x3 unit. Defaults to False.

    Example:
        >>> import torch
        >>> from mmeformer.models.layers import ConvMlp
        >>> mlp = ConvMlp(32, 128, mid_conv=True)
        >>> print(tuple(mlp(torch.rand(1, 32, 14, 14)).shape))
        (1, 32, 14, 14)
    """

    def __init__(self,
                 in_channels: int,
                 hidden_channels: int,
                 act_cfg: dict = dict(type='GELU'),
                 mid_conv: bool = False) -> None:
        super().__init__()
        self.fc1 = conv_bn(in_channels, hidden_channels, act_cfg=act_cfg)
        self.mid = conv_bn(
            hidden_channels,
            hidden_channels,
            3,
            groups=hidden_channels,
            act_cfg=act_cfg) if mid_conv else None
        self.fc2 = conv_bn(hidden_channels, in_channels)
        for unit in (self.fc1, self.fc2):
            trunc_normal_init(unit.conv, std=0.02, bias=0.)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc1(x)
        if self.mid is not None:
            x = self.mid(x)
        return self.fc2(x)


class LinearMlp(nn.Module):
    """Feed-forward network on ``(N, L, C)`` tokens: Linear, act, Linear.

    Modified from ``LinearMlp`` of the `official repo
    <https://github.com/snap-research/EfficientFormer>`_.

    Args:
        in_channels (int): Input and output channels.
        hidden_channels (int): Hidden channels.
        act_cfg (dict): Activation config. Defaults to ``dict(type='GELU')``.

    Example:
        >>> import torch
        >>> from mmeformer.models.layers import LinearMlp
        >>> mlp = LinearMlp(64, 256)
        >>> print(tuple(mlp(torch.rand(1, 49, 64)).shape))
        (1, 49, 64)
    """

    def __init__(
            self,
            in_channels: int,
            hidden_channels: int,
            act_cfg: dict = dict(type='GELU'),
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_channels, hidden_channels)
        self.act = build_activation_layer(act_cfg)
        self.fc2 = nn.Linear(hidden_channels, in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MetaBlock2d(nn.Module):
    """``x + ls1 * mixer(x)`` (if any mixer), then ``x + ls2 * mlp(x)``.

    V1's Meta4D block is this with the pooling mixer and a plain
    :class:`ConvMlp`; every V2 block is this with ``mid_conv=True`` and
    either no mixer (FFN block) or an ``Attention4D`` (AttnFFN block).

    Modified from ``Meta4D`` / ``FFN`` / ``AttnFFN`` of the `official repo
    <https://github.com/snap-research/EfficientFormer>`_.

    Args:
        channels (int): Input and output channels.
        mlp_ratio (float): Hidden channels of the MLP over ``channels``.
            Defaults to 4.
        token_mixer (nn.Module, optional): Maps the input to its own shape.
            Defaults to None.
        mid_conv (bool): Depthwise 3x3 unit inside the MLP.
            Defaults to False.
        act_cfg (dict): Activation config of the MLP.
            Defaults to ``dict(type='GELU')``.
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
        layer_scale_init_value (float): Initial layer scale.
            Defaults to 1e-5.

    Example:
        >>> import torch
        >>> from mmeformer.models.layers import MetaBlock2d
        >>> block = MetaBlock2d(32, mid_conv=True)
        >>> print(tuple(block(torch.rand(1, 32, 14, 14)).shape))
        (1, 32, 14, 14)
    """

    def __init__(self,
                 channels: int,
                 mlp_ratio: float = 4.,
                 token_mixer: Optional[nn.Module] = None,
                 mid_conv: bool = False,
                 act_cfg: dict = dict(type='GELU'),
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-5) -> None:
        super().__init__()
        self.token_mixer = token_mixer
        self.ls1 = LayerScale(
            channels, layer_scale_init_value,
            data_format='channels_first') if token_mixer is not None else None
        self.mlp = ConvMlp(
            channels,
            int(channels * mlp_ratio),
            act_cfg=act_cfg,
            mid_conv=mid_conv)
        self.ls2 = LayerScale(
            channels, layer_scale_init_value, data_format='channels_first')
        self.drop_path = DropPath(drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.token_mixer is not None:
            x = x + self.drop_path(self.ls1(self.token_mixer(x)))
        return x + self.drop_path(self.ls2(self.mlp(x)))
