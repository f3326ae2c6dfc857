"""The residual block on NCHW maps shared by V1 (Meta4D) and V2."""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn.bricks import DropPath

from .layer_scale import LayerScale
from .mlp import ConvMlp


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
            channels,
            layer_scale_init_value) if token_mixer is not None else None
        self.mlp = ConvMlp(
            channels,
            int(channels * mlp_ratio),
            act_cfg=act_cfg,
            mid_conv=mid_conv)
        self.ls2 = LayerScale(channels, layer_scale_init_value)
        self.drop_path = DropPath(drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.token_mixer is not None:
            x = x + self.drop_path(self.ls1(self.token_mixer(x)))
        return x + self.drop_path(self.ls2(self.mlp(x)))
