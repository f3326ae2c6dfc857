"""What EfficientFormer V1 and V2 backbones have in common."""
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmeformer.utils import Grid, parse_size
from ..layers import FusionReport, Stem, fuse_conv_bn
from .pretrained import load_pretrained


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class EfficientFormerStage(nn.Module):
    """An optional downsample followed by a sequence of blocks.

    Args:
        downsample (nn.Module, optional): Applied first, None in stage 0.
        blocks (Sequence[nn.Module]): Blocks mapping NCHW maps to NCHW maps.
        with_cp (bool): Recompute each block in the backward pass instead of
            storing its activations. Defaults to False.
    """

    def __init__(self,
                 downsample: Optional[nn.Module],
                 blocks: Sequence[nn.Module],
                 with_cp: bool = False) -> None:
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.Sequential(*blocks)
        self.with_cp = with_cp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        for block in self.blocks:
            if self.with_cp and torch.is_grad_enabled():
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x


class BaseEfficientFormer(BaseModule):
    """Base class of the EfficientFormer V1 and V2 backbones.

    Owns what both families share: architecture parsing, the stem, the four
    stages, the outputs (indices, optional final norm and per-output norms),
    input checks, freezing, ``norm_eval``, activation checkpointing,
    layer-wise depth for learning-rate decay and deploy-time fusion.
    Subclasses define ``arch_zoo``, ``arch_keys``, ``default_arch``,
    ``stem_act_cfg`` and the hooks :meth:`make_downsample`,
    :meth:`make_block` and :meth:`make_final_norm`; they take this
    constructor as it is.

    Args:
        arch (str | dict, optional): A name from ``arch_zoo``
            (case-insensitive) or a dict with every key in ``arch_keys``;
            None for the family's ``default_arch``. Defaults to None.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (int | Sequence[int]): Stages whose outputs are
            returned, negative values counting from the end; outputs come
            in stage order and stages after the last one listed are not run.
            A dense model's neck takes one input per index. Defaults to -1.
        frozen_stages (int): Freeze the stem and stages ``0..frozen_stages``
            (parameters stop requiring grad, modules stay in eval mode).
            -1 freezes nothing. Defaults to -1.
        norm_eval (bool): Keep every BatchNorm in eval mode while training.
            Defaults to False.
        drop_path_rate (float): Stochastic depth rate of the last block; block
            ``i`` of ``n`` gets ``rate * i / (n - 1)``. Defaults to 0.
        layer_scale_init_value (float): Initial layer scale. Defaults to 1e-5.
        attn_ref_size (int | str | tuple[int, int]): Input size the
            attention bias tables are learned for: ``800``, ``'800x1333'``
            or ``(h, w)``; other sizes resize the bias (official: 224
            classification, 800 detection, 512 segmentation).
            Defaults to 224.
        final_norm (bool): Normalise the last stage's output with the
            classifier's final norm. Defaults to False.
        out_norm_cfg (dict, optional): Norm config applied to every output,
            e.g. ``dense_out_norm_cfg``. Defaults to None.
        with_cp (bool): Use activation checkpointing per block: less
            memory, one more forward per block in the backward pass (which
            also updates BatchNorm running statistics a second time).
            Defaults to False.
        init_cfg (dict | list[dict], optional): Initialization config.
            A ``Pretrained`` entry may name a classifier checkpoint for a
            dense backbone, see :meth:`init_weights`. Defaults to truncated
            normal (std 0.02) for Linear layers.
    """

    arch_zoo: Dict[str, dict] = {}
    arch_keys: Tuple[str, ...] = ()
    default_arch: str = ''
    stem_act_cfg: dict = dict(type='GELU')
    #: ``out_norm_cfg`` of the family's official dense backbones.
    dense_out_norm_cfg: Optional[dict] = None
    num_stages = 4
    min_input_size = 32

    def __init__(self,
                 arch: Union[str, dict, None] = None,
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = -1,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-5,
                 attn_ref_size: Union[int, Sequence[int]] = 224,
                 final_norm: bool = False,
                 out_norm_cfg: Optional[dict] = None,
                 with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if init_cfg is None:
            init_cfg = dict(
                type='TruncNormal', layer='Linear', std=0.02, bias=0.)
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = self.parse_arch(self.default_arch if arch is
                                             None else arch)
        self.depths = list(self.arch_settings['depths'])
        self.channels = list(self.arch_settings['channels'])
        self.in_channels = in_channels
        self.out_indices = self.parse_out_indices(out_indices)
        if not -1 <= frozen_stages < self.num_stages:
            raise ValueError(f'frozen_stages must be in [-1, '
                             f'{self.num_stages - 1}], got {frozen_stages}')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.layer_scale_init_value = layer_scale_init_value
        self.ref_size = parse_size(attn_ref_size, 'attn_ref_size')
        if min(self.ref_size) < self.min_input_size:
            raise ValueError(f'attn_ref_size must be at least '
                             f'{self.min_input_size}, got {attn_ref_size}')
        self.final_norm = final_norm
        if final_norm and self.num_stages - 1 not in self.out_indices:
            raise ValueError(
                'final_norm=True normalises the last stage output, but '
                f'out_indices={self.out_indices} does not return it')

        self.stem = Stem(in_channels, self.channels[0], self.stem_act_cfg)
        total = sum(self.depths)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        self.stages = nn.ModuleList()
        for i, depth in enumerate(self.depths):
            first = sum(self.depths[:i])
            blocks = [
                self.make_block(i, j, rates[first + j]) for j in range(depth)
            ]
            downsample = self.make_downsample(i) if i > 0 else None
            self.stages.append(
                EfficientFormerStage(downsample, blocks, with_cp=with_cp))

        if final_norm:
            self.norm = self.make_final_norm(self.channels[-1])
        self.out_norms = nn.ModuleList(
            build_norm_layer(out_norm_cfg, self.channels[i])[1] if out_norm_cfg
            is not None and i in self.out_indices else nn.Identity()
            for i in range(self.num_stages))
        self._freeze_stages()

    @classmethod
    def parse_arch(cls, arch: Union[str, dict]) -> dict:
        """Resolve ``arch`` to a settings dict and check it."""
        if isinstance(arch, str):
            name = arch.lower()
            if name not in cls.arch_zoo:
                raise ValueError(
                    f'Unknown {cls.__name__} arch {arch!r}; valid names: '
                    f'{sorted(cls.arch_zoo)}, or a dict with keys '
                    f'{list(cls.arch_keys)}')
            return cls.arch_zoo[name]
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a str or a dict, got {type(arch)}')
        missing = [key for key in cls.arch_keys if key not in arch]
        if missing:
            raise ValueError(f'The {cls.__name__} arch dict misses the keys '
                             f'{missing}; it needs {list(cls.arch_keys)}')
        for key in ('depths', 'channels'):
            if len(arch[key]) != cls.num_stages:
                raise ValueError(f'arch[{key!r}] needs {cls.num_stages} '
                                 f'values, got {arch[key]}')
        return arch

    def parse_out_indices(
            self, out_indices: Union[int, Sequence[int]]) -> Tuple[int, ...]:
        """Normalise ``out_indices`` to sorted non-negative stage indices."""
        if _is_int(out_indices):
            out_indices = [out_indices]
        if isinstance(out_indices, str) or not isinstance(
                out_indices, Sequence) or not all(map(_is_int, out_indices)):
            raise TypeError(
                'out_indices must be a stage index or a sequence of them '
                f'(ints in [{-self.num_stages}, {self.num_stages - 1}]), '
                f'got {out_indices!r}')
        indices = set()
        for index in out_indices:
            if not -self.num_stages <= index < self.num_stages:
                raise ValueError(
                    f'out_indices must lie in [{-self.num_stages}, '
                    f'{self.num_stages - 1}], got {index}')
            indices.add(index % self.num_stages)
        if not indices:
            raise ValueError('out_indices must name at least one stage')
        return tuple(sorted(indices))

    @property
    def out_channels(self) -> List[int]:
        """Channels of the returned feature maps, in order."""
        return [self.channels[i] for i in self.out_indices]

    def stage_grid(self, stage: int) -> Grid:
        """Token grid of ``stage`` for an ``attn_ref_size`` input."""
        return tuple(math.ceil(s / 2**(stage + 2)) for s in self.ref_size)

    @staticmethod
    def output_grid(x: torch.Tensor, stage: int) -> Grid:
        """Spatial size of the output of ``stage`` for the input ``x``."""
        return tuple(math.ceil(s / 2**(stage + 2)) for s in x.shape[-2:])

    def make_downsample(self, stage: int) -> nn.Module:
        """The downsample opening ``stage`` (> 0)."""
        raise NotImplementedError

    def make_block(self, stage: int, index: int,
                   drop_path_rate: float) -> nn.Module:
        """Block ``index`` of ``stage``."""
        raise NotImplementedError

    def make_final_norm(self, channels: int) -> nn.Module:
        """The classifier's norm on the last stage output."""
        raise NotImplementedError

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError naming the problem for unusable inputs.

        A wrong channel count is left to the stem's convolution, whose
        error names the expected and the given channels.
        """
        if x.dim() != 4:
            raise ValueError(f'{type(self).__name__} expects an (N, C, H, W) '
                             f'tensor, got shape {tuple(x.shape)}')
        height, width = x.shape[-2:]
        if min(height, width) < self.min_input_size:
            raise ValueError(
                f'{type(self).__name__} needs inputs of at least '
                f'{self.min_input_size}x{self.min_input_size} (its last stage '
                f'has stride 32), got {height}x{width}; resize or pad the '
                'input')

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Feature maps of the stages in ``out_indices``.

        Args:
            x (Tensor): Images of shape ``(N, in_channels, H, W)``,
                ``H, W >= 32``.

        Returns:
            tuple[Tensor]: One ``(N, C_i, ceil(H / 2^(i+2)),
            ceil(W / 2^(i+2)))`` map per index ``i`` in ``out_indices``.
        """
        # A trace records neither branch: its sizes are symbolic and the
        # exported graph must not freeze them.
        if not torch.jit.is_tracing():
            self.check_input(x)
            if x.shape[0] == 0:
                # The attention reshapes cannot infer sizes from 0 elements.
                return tuple(
                    x.new_empty(0, self.channels[i], *self.output_grid(x, i))
                    for i in self.out_indices)
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages[:self.out_indices[-1] + 1]):
            x = stage(x)
            if i in self.out_indices:
                out = x
                if self.final_norm and i == self.num_stages - 1:
                    out = self.norm(out)
                outs.append(self.out_norms[i](out))
        return tuple(outs)

    def init_weights(self) -> None:
        """Initialise the weights, loading a ``Pretrained`` checkpoint last.

        The dense configs start their backbone from an ImageNet classifier
        (``init_cfg=dict(type='Pretrained', prefix='backbone.', ...)``). By
        design, such a file fits a dense backbone only in part: its
        attention-bias tables are learned for 224 inputs and the backbone's
        for ``attn_ref_size``, and its final norm has no counterpart. The
        official dense models start those tables at zero, and so does this
        method, reporting it in one line; mmengine would print a size
        mismatch per table. Any other mismatch is left to mmengine's loader,
        which reports it in full (see :func:`.pretrained.load_pretrained`).
        """
        init_cfgs = self.init_cfg if isinstance(self.init_cfg,
                                                list) else [self.init_cfg]
        pretrained = [
            cfg for cfg in init_cfgs
            if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained'
        ]
        if self._is_init or not pretrained:
            super().init_weights()
            return
        others = [cfg for cfg in init_cfgs if cfg not in pretrained]
        init_cfg, self.init_cfg = self.init_cfg, others or None
        try:
            super().init_weights()
        finally:
            self.init_cfg = init_cfg
        for cfg in pretrained:
            load_pretrained(
                self,
                cfg['checkpoint'],
                prefix=cfg.get('prefix'),
                map_location=cfg.get('map_location', 'cpu'))

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.stem]
        for i in range(self.frozen_stages + 1):
            frozen += [self.stages[i], self.out_norms[i]]
        if self.final_norm and self.frozen_stages == self.num_stages - 1:
            frozen.append(self.norm)
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'BaseEfficientFormer':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def get_layer_depth(self, param_name: str, prefix: str = '') -> tuple:
        """Layer depth of a parameter, for layer-wise learning-rate decay.

        The stem is layer 0, block ``j`` of stage ``i`` is layer
        ``sum(depths[:i]) + j + 1`` (a stage's downsample shares its first
        block's layer), and the norms after the stages plus everything
        outside the backbone (the head) are the last layer.

        Args:
            param_name (str): Parameter name.
            prefix (str): Prefix of the backbone's parameters, e.g.
                ``'backbone.'``. Defaults to ``''``.

        Returns:
            tuple[int, int]: The layer id and the number of layers.
        """
        num_layers = sum(self.depths) + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        parts = param_name[len(prefix):].split('.')
        if parts[0] == 'stem':
            return 0, num_layers
        if parts[0] == 'stages':
            stage = int(parts[1])
            block = int(parts[3]) if parts[2] == 'blocks' else 0
            return sum(self.depths[:stage]) + block + 1, num_layers
        return num_layers - 1, num_layers

    def switch_to_deploy(self) -> FusionReport:
        """Fold every foldable BatchNorm into its preceding convolution.

        Meant for inference: the folded model equals the original one in
        eval mode. Safe to call twice (the second call folds nothing).

        Returns:
            FusionReport: ``'conv <- bn'`` names of the folds and the
            BatchNorm layers that stay (no conv directly before them).
        """
        return fuse_conv_bn(self)
