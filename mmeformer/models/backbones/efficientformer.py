"""EfficientFormer (V1) backbone."""
from typing import Union

import torch
import torch.nn as nn
from mmcv.cnn.bricks import DropPath
from mmpretrain.models.backbones.poolformer import Pooling
from mmpretrain.models.utils import LayerNorm2d, LayerScale

from mmeformer.registry import MODELS
from mmeformer.utils import Grid
from ..layers import AttentionBias, Downsample, LinearMlp, MetaBlock2d
from .base import BaseEfficientFormer


class Attention(nn.Module):
    """Multi-head self-attention over tokens with a relative-position bias.

    Modified from ``Attention`` of the `official repo
    <https://github.com/snap-research/EfficientFormer>`_.

    Args:
        channels (int): Token channels.
        ref_grid (tuple[int, int]): Token grid of the reference input.
        num_heads (int): Attention heads. Defaults to 8.
        key_dim (int): Query and key channels per head. Defaults to 32.
        attn_ratio (int): Value channels per head over ``key_dim``.
            Defaults to 4.
    """

    def __init__(self,
                 channels: int,
                 ref_grid: Grid,
                 num_heads: int = 8,
                 key_dim: int = 32,
                 attn_ratio: int = 4) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = attn_ratio * key_dim
        self.scale = key_dim**-0.5
        # Per head the projection holds q, k and v side by side: the layout
        # of the official checkpoints.
        self.qkv = nn.Linear(channels,
                             num_heads * (2 * key_dim + self.value_dim))
        self.proj = nn.Linear(num_heads * self.value_dim, channels)
        self.attn_bias = AttentionBias(num_heads, ref_grid)

    def forward(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        """Attend over ``(N, L, C)`` tokens laid out on ``grid``."""
        batch, length, _ = x.shape
        qkv = self.qkv(x).reshape(batch, length, self.num_heads, -1)
        q, k, v = qkv.transpose(1, 2).split(
            [self.key_dim, self.key_dim, self.value_dim], dim=-1)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = (attn + self.attn_bias(grid, grid)).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(batch, length, -1)
        return self.proj(x)


class TokenLayerNorm2d(LayerNorm2d):
    """MMPretrain's :class:`LayerNorm2d` whose output keeps the memory of the
    official classifier's token LayerNorm.

    The official V1 classifier normalises ``(B, H*W, C)`` tokens and averages
    them; returning a view of that channels-last result, rather than a
    contiguous NCHW copy, makes the average pooling sum in the same order, so
    converted official weights give bit-identical logits.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = super().forward(
            x.permute(0, 2, 3, 1), data_format='channel_last')
        return tokens.permute(0, 3, 1, 2)


class Meta3DBlock(nn.Module):
    """Transformer block of the last V1 stage, on NCHW maps.

    The map is flattened to tokens, goes through ``x + ls1 * attn(LN(x))``
    and ``x + ls2 * mlp(LN(x))``, and is reshaped back, so that every block
    of the backbone maps NCHW to NCHW.

    Modified from ``Meta3D`` of the `official repo
    <https://github.com/snap-research/EfficientFormer>`_.

    Args:
        channels (int): Channels.
        ref_grid (tuple[int, int]): Token grid of the reference input.
        mlp_ratio (float): MLP hidden channels over ``channels``.
            Defaults to 4.
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
        layer_scale_init_value (float): Initial layer scale.
            Defaults to 1e-5.
    """

    def __init__(self,
                 channels: int,
                 ref_grid: Grid,
                 mlp_ratio: float = 4.,
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-5) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(channels)
        self.token_mixer = Attention(channels, ref_grid)
        self.ls1 = LayerScale(
            channels, layer_scale_init_value, data_format='channels_last')
        self.norm2 = nn.LayerNorm(channels)
        self.mlp = LinearMlp(channels, int(channels * mlp_ratio))
        self.ls2 = LayerScale(
            channels, layer_scale_init_value, data_format='channels_last')
        self.drop_path = DropPath(drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        x = x.flatten(2).transpose(1, 2)
        x = x + self.drop_path(
            self.ls1(self.token_mixer(self.norm1(x), (height, width))))
        x = x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))
        return x.transpose(1, 2).reshape(batch, channels, height, width)


@MODELS.register_module()
class EfficientFormer(BaseEfficientFormer):
    """EfficientFormer (V1) backbone for classification and dense tasks.

    A PyTorch implementation of `EfficientFormer: Vision Transformers at
    MobileNet Speed <https://arxiv.org/abs/2206.01191>`_ (NeurIPS 2022).
    Four stages of PoolFormer-style Meta4D blocks; the last
    ``num_attn_blocks`` blocks of the last stage are Meta3D transformer
    blocks. Works at any input size of at least 32x32: the attention bias
    learned for ``attn_ref_size`` is resized at other sizes as the official
    dense backbones do.

    Modified from the `official repo
    <https://github.com/snap-research/EfficientFormer>`_ (``models/``,
    ``detection/``, ``segmentation/``), `timm
    <https://github.com/huggingface/pytorch-image-models>`_ and `mmpretrain
    <https://github.com/open-mmlab/mmpretrain>`_.

    Args:
        arch (str | dict, optional): ``'l1'``, ``'l3'`` or ``'l7'``
            (case-insensitive), or a dict with keys:

            - depths (list[int]): Blocks per stage.
            - channels (list[int]): Channels per stage.
            - num_attn_blocks (int): Meta3D blocks at the end of the last
              stage.

            None selects ``'l1'``. Defaults to None.
        layer_scale_init_value (float): Initial layer scale (the official
            dense L7 uses 1e-6). Defaults to 1e-5.
        final_norm (bool): Apply the classifier's LayerNorm over channels to
            the last stage output. Defaults to False.

    The constructor is :class:`BaseEfficientFormer`'s; its other arguments
    (``in_channels``, ``out_indices``, ``frozen_stages``, ``attn_ref_size``,
    ``out_norm_cfg``, ``with_cp``...) are documented there.

    Example:
        >>> import torch
        >>> from mmeformer.models import EfficientFormer
        >>> model = EfficientFormer('l1', out_indices=(0, 1, 2, 3)).eval()
        >>> with torch.no_grad():
        ...     outs = model(torch.rand(1, 3, 224, 224))
        >>> for out in outs:
        ...     print(tuple(out.shape))
        (1, 48, 56, 56)
        (1, 96, 28, 28)
        (1, 224, 14, 14)
        (1, 448, 7, 7)
    """

    arch_zoo = {
        'l1': dict(depths=[3, 2, 6, 4], channels=[48, 96, 224, 448],
                   num_attn_blocks=1),
        'l3': dict(depths=[4, 4, 12, 6], channels=[64, 128, 320, 512],
                   num_attn_blocks=4),
        'l7': dict(depths=[6, 6, 18, 8], channels=[96, 192, 384, 768],
                   num_attn_blocks=8),
    }  # yapf: disable
    arch_keys = ('depths', 'channels', 'num_attn_blocks')
    default_arch = 'l1'
    stem_act_cfg = dict(type='ReLU')
    # The official V1 detectors and segmentors normalise each output with a
    # GroupNorm of one group; the V2 ones have no output norm.
    dense_out_norm_cfg = dict(type='GN', num_groups=1)
    mlp_ratio = 4

    @classmethod
    def parse_arch(cls, arch: Union[str, dict]) -> dict:
        arch = super().parse_arch(arch)
        if not 0 <= arch['num_attn_blocks'] <= arch['depths'][-1]:
            raise ValueError('num_attn_blocks must be in [0, depths[-1]], '
                             f"got {arch['num_attn_blocks']}")
        return arch

    @classmethod
    def build_downsample(cls, stage: int, in_channels: int, out_channels: int,
                         ref_grid: Grid) -> nn.Module:
        """The downsample opening ``stage``, on its own.

        The signature is :meth:`EfficientFormerV2.build_downsample`'s; a V1
        downsample is the same convolution in every stage and has no
        attention, so ``stage`` and ``ref_grid`` do not change it.

        Args:
            stage (int): The stage it opens (1 to 3).
            in_channels (int): Channels of the previous stage.
            out_channels (int): Channels of ``stage``.
            ref_grid (tuple[int, int]): Token grid of the previous stage
                for the reference input size.

        Returns:
            nn.Module: The :class:`Downsample`.
        """
        return Downsample(in_channels, out_channels)

    @staticmethod
    def build_block(stage: int,
                    channels: int,
                    mlp_ratio: float,
                    attention: bool,
                    ref_grid: Grid,
                    drop_path_rate: float = 0.,
                    layer_scale_init_value: float = 1e-5) -> nn.Module:
        """A block on its own: Meta4D (pooling) or Meta3D (attention).

        The signature is :meth:`EfficientFormerV2.build_block`'s; the
        network places Meta3D blocks at the end of its last stage only.

        Args:
            stage (int): Its stage; a V1 block is the same in every stage.
            channels (int): The stage's channels.
            mlp_ratio (float): Its MLP ratio (the network's is 4).
            attention (bool): A :class:`Meta3DBlock` rather than a
                pooling :class:`MetaBlock2d`.
            ref_grid (tuple[int, int]): Token grid of ``stage`` for the
                reference input size (of the attention bias).
            drop_path_rate (float): Stochastic depth rate. Defaults to 0.
            layer_scale_init_value (float): Initial layer scale.
                Defaults to 1e-5.

        Returns:
            nn.Module: The block, mapping NCHW maps to NCHW maps.
        """
        if attention:
            return Meta3DBlock(
                channels,
                ref_grid,
                mlp_ratio=mlp_ratio,
                drop_path_rate=drop_path_rate,
                layer_scale_init_value=layer_scale_init_value)
        return MetaBlock2d(
            channels,
            mlp_ratio=mlp_ratio,
            token_mixer=Pooling(),
            drop_path_rate=drop_path_rate,
            layer_scale_init_value=layer_scale_init_value)

    def make_downsample(self, stage: int) -> nn.Module:
        return self.build_downsample(stage, self.channels[stage - 1],
                                     self.channels[stage],
                                     self.stage_grid(stage - 1))

    def make_block(self, stage: int, index: int,
                   drop_path_rate: float) -> nn.Module:
        first_attn = self.depths[stage] - self.arch_settings['num_attn_blocks']
        return self.build_block(
            stage,
            self.channels[stage],
            self.mlp_ratio,
            stage == self.num_stages - 1 and index >= first_attn,
            self.stage_grid(stage),
            drop_path_rate=drop_path_rate,
            layer_scale_init_value=self.layer_scale_init_value)

    def make_final_norm(self, channels: int) -> nn.Module:
        return TokenLayerNorm2d(channels)
