"""The feed-forward networks of EfficientFormer blocks."""
import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer
from mmengine.model import trunc_normal_init

from .conv_bn import conv_bn


class ConvMlp(nn.Module):
    """Feed-forward network of 1x1 conv + BN units on NCHW maps.

    ``fc1 (conv1x1, BN, act) [-> mid (dw conv3x3, BN, act)] -> fc2 (conv1x1,
    BN)``. V1's Meta4D blocks use it without ``mid``, every V2 block with it.
    The 1x1 convolutions of ``fc1`` and ``fc2`` start from a truncated normal
    (std 0.02) with zero biases, as in the official models. The official
    ``mid`` is created after that initialisation and keeps PyTorch's default
    (not ConvModule's Kaiming init), and so does ours.

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
        if self.mid is not None:
            self.mid.conv.reset_parameters()

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
