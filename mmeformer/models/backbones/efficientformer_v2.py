"""EfficientFormerV2 backbone."""
import math
from typing import List, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer

from mmeformer.registry import MODELS
from mmeformer.utils import Grid
from ..layers import AttentionBias, Downsample, MetaBlock2d, conv_bn
from .base import BaseEfficientFormer


class Attention4D(nn.Module):
    """Multi-head self-attention on NCHW maps with talking heads.

    q, k and v are 1x1 conv + BN units, a depthwise 3x3 ``v_local`` unit
    adds local context to the attention output, and two 1x1 convs across
    heads mix the logits before and after the softmax. With ``stride=2``
    (stage 3) the map is first reduced by a depthwise stride-2 unit and the
    result is upsampled bilinearly to the exact input size, so odd sizes
    work too.

    Modified from ``Attention4D`` of the `official repo
    <https://github.com/snap-research/EfficientFormer>`_.

    Args:
        channels (int): Input and output channels.
        ref_grid (tuple[int, int]): Token grid of the block's input for the
            reference input size (before the stride).
        num_heads (int): Attention heads. Defaults to 8.
        key_dim (int): Query and key channels per head. Defaults to 32.
        attn_ratio (int): Value channels per head over ``key_dim``.
            Defaults to 4.
        stride (int): 1, or 2 to attend at half resolution. Defaults to 1.
        act_cfg (dict): Activation before the output projection.
            Defaults to ``dict(type='GELU')``.
    """

    def __init__(
            self,
            channels: int,
            ref_grid: Grid,
            num_heads: int = 8,
            key_dim: int = 32,
            attn_ratio: int = 4,
            stride: int = 1,
            act_cfg: dict = dict(type='GELU'),
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = attn_ratio * key_dim
        self.scale = key_dim**-0.5
        values = num_heads * self.value_dim
        self.stride_conv = conv_bn(
            channels, channels, 3, stride=stride,
            groups=channels) if stride > 1 else None
        self.q = conv_bn(channels, num_heads * key_dim)
        self.k = conv_bn(channels, num_heads * key_dim)
        self.v = conv_bn(channels, values)
        self.v_local = conv_bn(values, values, 3, groups=values)
        self.talking_head1 = nn.Conv2d(num_heads, num_heads, 1)
        self.talking_head2 = nn.Conv2d(num_heads, num_heads, 1)
        self.proj = conv_bn(values, channels, act_cfg=act_cfg, act_first=True)
        self.attn_bias = AttentionBias(
            num_heads, tuple(math.ceil(g / stride) for g in ref_grid))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        if self.stride_conv is not None:
            x = self.stride_conv(x)
        batch, _, height, width = x.shape
        tokens = height * width
        q = self.q(x).reshape(batch, self.num_heads, -1, tokens)
        k = self.k(x).reshape(batch, self.num_heads, -1, tokens)
        v = self.v(x)
        v_local = self.v_local(v)
        v = v.reshape(batch, self.num_heads, -1, tokens)

        grid = (height, width)
        attn = (q.transpose(-2, -1) @ k) * self.scale
        attn = attn + self.attn_bias(grid, grid)
        attn = self.talking_head1(attn).softmax(dim=-1)
        attn = self.talking_head2(attn)

        out = (v @ attn.transpose(-2, -1)).reshape(batch, -1, height, width)
        out = out + v_local
        if self.stride_conv is not None:
            out = F.interpolate(
                out, size=size, mode='bilinear', align_corners=False)
        return self.proj(out)


class LocalGlobalQuery(nn.Module):
    """Stride-2 query: depthwise 3x3 conv plus subsampling, then conv + BN.

    Modified from ``LGQuery`` of the `official repo
    <https://github.com/snap-research/EfficientFormer>`_.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Query channels.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.local = nn.Conv2d(
            in_channels,
            in_channels,
            3,
            stride=2,
            padding=1,
            groups=in_channels)
        self.pool = nn.AvgPool2d(1, stride=2)
        self.proj = conv_bn(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.local(x) + self.pool(x))


class Attention4DDownsample(nn.Module):
    """Stride-2 attention: half-resolution queries attend to all keys.

    Both query branches and ``v_local`` produce ``ceil(H / 2) x
    ceil(W / 2)`` maps, the size of the parallel stride-2 conv, for any
    ``H, W``.

    Modified from ``Attention4DDownsample`` of the `official repo
    <https://github.com/snap-research/EfficientFormer>`_.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        ref_grid (tuple[int, int]): Key token grid (the input's) for the
            reference input size.
        num_heads (int): Attention heads. Defaults to 8.
        key_dim (int): Query and key channels per head. Defaults to 16.
        attn_ratio (int): Value channels per head over ``key_dim``.
            Defaults to 4.
        act_cfg (dict): Activation before the output projection.
            Defaults to ``dict(type='GELU')``.
    """

    def __init__(
            self,
            in_channels: int,
            out_channels: int,
            ref_grid: Grid,
            num_heads: int = 8,
            key_dim: int = 16,
            attn_ratio: int = 4,
            act_cfg: dict = dict(type='GELU'),
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = key_dim**-0.5
        values = num_heads * attn_ratio * key_dim
        self.q = LocalGlobalQuery(in_channels, num_heads * key_dim)
        self.k = conv_bn(in_channels, num_heads * key_dim)
        self.v = conv_bn(in_channels, values)
        self.v_local = conv_bn(values, values, 3, stride=2, groups=values)
        self.proj = conv_bn(
            values, out_channels, act_cfg=act_cfg, act_first=True)
        self.attn_bias = AttentionBias(num_heads, ref_grid, query_stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        q = self.q(x)
        q_height, q_width = q.shape[-2:]
        q = q.reshape(batch, self.num_heads, -1, q_height * q_width)
        k = self.k(x).reshape(batch, self.num_heads, -1, height * width)
        v = self.v(x)
        v_local = self.v_local(v)
        v = v.reshape(batch, self.num_heads, -1, height * width)

        attn = (q.transpose(-2, -1) @ k) * self.scale
        attn = attn + self.attn_bias((q_height, q_width), (height, width))
        attn = attn.softmax(dim=-1)

        out = (v @ attn.transpose(-2, -1)).reshape(batch, -1, q_height,
                                                   q_width)
        return self.proj(out + v_local)


@MODELS.register_module()
class EfficientFormerV2(BaseEfficientFormer):
    """EfficientFormerV2 backbone for classification and dense tasks.

    A PyTorch implementation of `Rethinking Vision Transformers for MobileNet
    Size and Speed <https://arxiv.org/abs/2212.08059>`_ (ICCV 2023). Four
    stages of FFN blocks (conv MLP with a depthwise 3x3); the last
    ``num_attn_blocks`` blocks of stages 2 and 3 add an ``Attention4D``
    (stride 2 in stage 2), and stage 3 opens with a local-global attention
    downsample. Works at any input size of at least 32x32, odd sizes
    included: the attention biases learned for ``attn_ref_size`` are resized
    at other sizes as the official dense backbones do.

    Modified from the `official repo
    <https://github.com/snap-research/EfficientFormer>`_ (``models/``,
    ``detection/``, ``segmentation/``) and `timm
    <https://github.com/huggingface/pytorch-image-models>`_.

    Args:
        arch (str | dict, optional): ``'s0'``, ``'s1'``, ``'s2'`` or ``'l'``
            (case-insensitive), or a dict with keys:

            - depths (list[int]): Blocks per stage.
            - channels (list[int]): Channels per stage.
            - num_attn_blocks (int | list[int]): Attention blocks at the end
              of stages 2 and 3: one count for both, or one per stage.
            - mlp_ratios (list[list[float]]): MLP expansion ratio of every
              block, per stage.

            None selects ``'s0'``. Defaults to None.
        norm_eval (bool): Keep BatchNorm in eval mode while training, as the
            official dense backbone does. Defaults to False.
        drop_path_rate (float): Stochastic depth rate of the last block
            (official: 0.02 for S2, 0.1 for L). Defaults to 0.
        final_norm (bool): Apply the classifier's BatchNorm to the last stage
            output. Defaults to False.

    The constructor is :class:`BaseEfficientFormer`'s; its other arguments
    (``in_channels``, ``out_indices``, ``frozen_stages``, ``attn_ref_size``,
    ``out_norm_cfg``, ``with_cp``...) are documented there.

    Example:
        >>> import torch
        >>> from mmeformer.models import EfficientFormerV2
        >>> model = EfficientFormerV2('s0', out_indices=(0, 1, 2, 3)).eval()
        >>> with torch.no_grad():
        ...     outs = model(torch.rand(1, 3, 513, 671))
        >>> for out in outs:
        ...     print(tuple(out.shape))
        (1, 32, 129, 168)
        (1, 48, 65, 84)
        (1, 96, 33, 42)
        (1, 176, 17, 21)
    """

    arch_zoo = {
        's0': dict(
            depths=[2, 2, 6, 4],
            channels=[32, 48, 96, 176],
            num_attn_blocks=2,
            mlp_ratios=[[4] * 2, [4] * 2, [4, 3, 3, 3, 4, 4], [4, 3, 3, 4]]),
        's1': dict(
            depths=[3, 3, 9, 6],
            channels=[32, 48, 120, 224],
            num_attn_blocks=2,
            mlp_ratios=[[4] * 3, [4] * 3, [4, 4, 3, 3, 3, 3, 4, 4, 4],
                        [4, 4, 3, 3, 4, 4]]),
        's2': dict(
            depths=[4, 4, 12, 8],
            channels=[32, 64, 144, 288],
            num_attn_blocks=4,
            mlp_ratios=[[4] * 4, [4] * 4,
                        [4, 4, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4],
                        [4, 4, 3, 3, 3, 3, 4, 4]]),
        'l': dict(
            depths=[5, 5, 15, 10],
            channels=[40, 80, 192, 384],
            num_attn_blocks=6,
            mlp_ratios=[[4] * 5, [4] * 5,
                        [4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4],
                        [4, 4, 4, 3, 3, 3, 3, 4, 4, 4]]),
    }  # yapf: disable
    arch_keys = ('depths', 'channels', 'num_attn_blocks', 'mlp_ratios')
    default_arch = 's0'
    stem_act_cfg = dict(type='GELU')

    @classmethod
    def parse_arch(cls, arch: Union[str, dict]) -> dict:
        arch = super().parse_arch(arch)
        ratios = [len(r) for r in arch['mlp_ratios']]
        if ratios != list(arch['depths']):
            raise ValueError('arch mlp_ratios must hold one ratio per block '
                             f"(depths {arch['depths']}), got {ratios}")
        counts = cls.attn_blocks_per_stage(arch)
        if counts is None or not all(
                0 <= n <= depth for n, depth in zip(counts, arch['depths'])):
            raise ValueError(
                'num_attn_blocks must be an int in [0, min(depths[2:])] or a '
                'pair of ints, each in [0, depths[i]] of stages 2 and 3, got '
                f"{arch['num_attn_blocks']!r} for depths {arch['depths']}")
        return arch

    @staticmethod
    def attn_blocks_per_stage(arch: dict) -> Optional[List[int]]:
        """Attention blocks at the end of each of the four stages.

        Args:
            arch (dict): An arch dict; its ``num_attn_blocks`` is one count
                for stages 2 and 3, or a pair of counts.

        Returns:
            list[int] | None: Four counts (0 for stages 0 and 1), or None
            when ``num_attn_blocks`` is neither an int nor a pair of ints.
        """
        counts = arch['num_attn_blocks']
        if isinstance(counts, int) and not isinstance(counts, bool):
            counts = [counts, counts]
        is_pair = isinstance(counts, (list, tuple)) and len(counts) == 2
        if not is_pair or not all(
                isinstance(n, int) and not isinstance(n, bool)
                for n in counts):
            return None
        return [0, 0, *counts]

    @classmethod
    def build_downsample(cls, stage: int, in_channels: int, out_channels: int,
                         ref_grid: Grid) -> nn.Module:
        """The downsample opening ``stage``, on its own.

        Args:
            stage (int): The stage it opens (1 to 3); the last one adds the
                local-global attention.
            in_channels (int): Channels of the previous stage.
            out_channels (int): Channels of ``stage``.
            ref_grid (tuple[int, int]): Token grid of the previous stage
                for the reference input size.

        Returns:
            nn.Module: The :class:`Downsample`.
        """
        attn = None
        if stage == cls.num_stages - 1:
            attn = Attention4DDownsample(in_channels, out_channels, ref_grid)
        return Downsample(in_channels, out_channels, attn=attn)

    @staticmethod
    def build_block(stage: int,
                    channels: int,
                    mlp_ratio: float,
                    attention: bool,
                    ref_grid: Grid,
                    drop_path_rate: float = 0.,
                    layer_scale_init_value: float = 1e-5) -> nn.Module:
        """A block of ``stage``, on its own.

        Args:
            stage (int): Its stage (the attention of stage 2 has stride 2).
            channels (int): The stage's channels.
            mlp_ratio (float): Its MLP ratio.
            attention (bool): Add an ``Attention4D`` (stages 2 and 3).
            ref_grid (tuple[int, int]): Token grid of ``stage`` for the
                reference input size.
            drop_path_rate (float): Stochastic depth rate. Defaults to 0.
            layer_scale_init_value (float): Initial layer scale.
                Defaults to 1e-5.

        Returns:
            nn.Module: The :class:`MetaBlock2d`.
        """
        token_mixer = None
        if attention:
            token_mixer = Attention4D(
                channels, ref_grid, stride=2 if stage == 2 else 1)
        return MetaBlock2d(
            channels,
            mlp_ratio=mlp_ratio,
            token_mixer=token_mixer,
            mid_conv=True,
            drop_path_rate=drop_path_rate,
            layer_scale_init_value=layer_scale_init_value)

    def make_downsample(self, stage: int) -> nn.Module:
        in_channels, out_channels = self.channels[stage - 1:stage + 1]
        return self.build_downsample(stage, in_channels, out_channels,
                                     self.stage_grid(stage - 1))

    def make_block(self, stage: int, index: int,
                   drop_path_rate: float) -> nn.Module:
        first_attn = self.depths[stage] - self.attn_blocks_per_stage(
            self.arch_settings)[stage]
        return self.build_block(
            stage,
            self.channels[stage],
            self.arch_settings['mlp_ratios'][stage][index],
            index >= first_attn,
            self.stage_grid(stage),
            drop_path_rate=drop_path_rate,
            layer_scale_init_value=self.layer_scale_init_value)

    def make_final_norm(self, channels: int) -> nn.Module:
        return build_norm_layer(dict(type='BN'), channels)[1]
