"""The EfficientFormerV2 supernet: the largest arch of a search space, whose
weights every arch of the space slices.

It knows the space (which archs exist) but neither a latency table nor a
search: those live in :mod:`mmeformer.search`, above the models.
"""
import random
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.utils import LayerScale

from mmeformer.registry import MODELS
from ..layers import MetaBlock2d
from .efficientformer_v2 import Attention4D, EfficientFormerV2
from .efficientformer_v2_space import EfficientFormerV2Space

__all__ = [
    'EfficientFormerV2Supernet', 'ElasticBlock', 'make_elastic',
    'recalibrate_bn', 'slice_state_dict', 'SpaceMismatchError'
]


class SpaceMismatchError(ValueError):
    """A supernet checkpoint that was trained on another search space."""


# -- elastic layers --------------------------------------------------------
# Each one is its PyTorch layer plus the rule "use the first channels":
# input channels follow the input, output channels ``out_active`` (None for
# all). They hold no state of their own, so :func:`make_elastic` turns an
# existing layer into one in place and its parameters stay where they are.


class ElasticConv2d(nn.Conv2d):
    """A convolution on the first input channels, to ``out_active``
    outputs; a depthwise one (``groups == in_channels``) on as many
    channels as its input has."""

    out_active: Optional[int] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        depthwise = self.groups == self.in_channels > 1
        if depthwise:
            out, groups = channels, channels
        else:
            out, groups = self.out_active or self.out_channels, self.groups
        if out == self.out_channels and channels == self.in_channels:
            return super().forward(x)
        weight = self.weight[:out, :1 if depthwise else channels]
        bias = None if self.bias is None else self.bias[:out]
        return F.conv2d(x, weight.contiguous(), bias, self.stride,
                        self.padding, self.dilation, groups)


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm on the first channels of its weights and statistics;
    training updates the statistics of those channels only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        if channels == self.num_features:
            return super().forward(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean[:channels] if track else None,
                            self.running_var[:channels] if track else None,
                            self.weight[:channels], self.bias[:channels],
                            use_batch, factor, self.eps)


class ElasticLayerScale(LayerScale):
    """A layer scale on the first channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dim = 1 if self.data_format == 'channels_first' else -1
        if x.shape[dim] == self.weight.numel():
            return super().forward(x)
        weight = self.weight[:x.shape[dim]]
        if self.data_format == 'channels_first':
            weight = weight.view(-1, 1, 1)
        return x.mul_(weight) if self.inplace else x * weight


class ElasticLinear(nn.Linear):
    """A linear layer on the first input features (a slimmable classifier:
    its input is the last stage's width)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.in_features:
            return super().forward(x)
        return F.linear(x, self.weight[:, :x.shape[-1]], self.bias)


_ELASTIC = OrderedDict([
    (nn.Conv2d, ElasticConv2d),
    (nn.BatchNorm2d, ElasticBatchNorm2d),
    (LayerScale, ElasticLayerScale),
    (nn.Linear, ElasticLinear),
])


def make_elastic(module: nn.Module) -> nn.Module:
    """Make every convolution, BatchNorm, layer scale and linear layer of
    ``module`` use the first channels of its weights for narrower inputs.

    Layers change class in place (the elastic classes add behaviour, no
    state), so parameters, buffers and optimizer references stay valid.
    Only layers of exactly the listed classes change; ``SyncBatchNorm``
    would not, so a supernet is trained with ``sync_bn=None``.

    Args:
        module (nn.Module): E.g. a backbone or a classification head.

    Returns:
        nn.Module: ``module`` itself.
    """
    for layer in module.modules():
        elastic = _ELASTIC.get(type(layer))
        if elastic is not None:
            layer.__class__ = elastic
    return module


def slice_state_dict(source: Dict[str, torch.Tensor],
                     target: Dict[str, torch.Tensor],
                     prefix: str = '') -> 'OrderedDict[str, torch.Tensor]':
    """The leading slice of each ``source`` tensor in ``target``'s shape.

    Every weight of a subnet is the first channels (on every axis) of the
    supernet weight of the same name, which is what the elastic layers use.

    Args:
        source (dict[str, Tensor]): The supernet's state dict.
        target (dict[str, Tensor]): A state dict (on any device, ``meta``
            included) with the names and shapes wanted.
        prefix (str): Prepended to ``target``'s names to find them in
            ``source``. Defaults to ``''``.

    Returns:
        OrderedDict[str, Tensor]: Contiguous copies, ``target``'s names.
    """
    out = OrderedDict()
    for name, like in target.items():
        tensor = source[prefix + name]
        index = tuple(slice(0, n) for n in like.shape)
        out[name] = tensor[index].detach().clone().contiguous()
    return out


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Sequence, forward=None) -> None:
    """Re-estimate the BatchNorm statistics of ``model`` on ``batches``.

    Running statistics are reset and averaged over the batches with equal
    weights (``momentum=None``, a cumulative average), without gradients,
    with the BatchNorms in train mode and every other module in eval mode:
    stochastic depth and dropout are off, so the statistics are those of
    the network that inference runs. The momenta and the train/eval mode
    are restored. A supernet's running statistics mix every subnet
    trained; one subnet's own statistics come from this.

    Args:
        model (nn.Module): The model, its subnet already set.
        batches (Sequence): Inputs, each passed to ``forward``.
        forward (callable, optional): ``forward(model, batch)``; defaults
            to ``model(batch)``.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    modes = {m: m.training for m in model.modules()}
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.eval()
    for norm in norms:
        norm.train()
    try:
        for batch in batches:
            if forward is None:
                model(batch)
            else:
                forward(model, batch)
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        for module, mode in modes.items():
            module.training = mode


# -- blocks ----------------------------------------------------------------


class ElasticBlock(MetaBlock2d):
    """A V2 block that can be switched off (identity) or run without its
    attention.

    The token mixer, when there is one, runs only with ``use_token_mixer``;
    ``active=False`` makes the block return its input, which is exactly a
    stage without it.
    """

    active = True
    use_token_mixer = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return x
        if self.token_mixer is not None and self.use_token_mixer:
            x = x + self.drop_path(self.ls1(self.token_mixer(x)))
        return x + self.drop_path(self.ls2(self.mlp(x)))


@MODELS.register_module()
class EfficientFormerV2Supernet(EfficientFormerV2):
    """The weight-sharing supernet of an EfficientFormerV2 search space.

    The largest arch of ``space``, except that every block of stages 2 and
    3 owns an attention, so that any depth with any attention count of the
    space can be set: a subnet (an arch of the space) runs the first
    ``depths[i]`` blocks of each stage, the last ``num_attn_blocks`` of
    them (stages 2 and 3) with their attention, the first
    ``channels[i]`` channels of every layer of stage ``i`` (the stem and
    the downsamples follow the widths they join) and the first
    ``int(channels[i] * ratio)`` hidden channels of each block's MLP.
    Attention heads and key widths are fixed, so the bias tables do not
    depend on the width and the model works at any input size, as
    :class:`EfficientFormerV2` does.

    :meth:`subnet_state_dict` gives the weights of a plain
    :class:`EfficientFormerV2` of the arch whose outputs equal the
    supernet's with that subnet set. BatchNorm statistics are shared: after
    choosing a subnet, re-estimate them with :func:`recalibrate_bn`.

    This is the paper's supernet (arXiv 2212.08059, Section 4) as read in
    ``docs/search.md``, with one difference: per-width BatchNorms are
    replaced by recalibration (the statistics of a layer depend on every
    choice before it, not only on its own width).

    Args:
        space (EfficientFormerV2Space | dict, optional): The search space,
            or its :meth:`~EfficientFormerV2Space.to_dict`; None for
            :meth:`EfficientFormerV2Space.default`. Defaults to None.
        **kwargs: :class:`EfficientFormerV2`'s other arguments (not
            ``arch``).

    Example:
        >>> import torch
        >>> from mmeformer.models import EfficientFormerV2Supernet
        >>> supernet = EfficientFormerV2Supernet().eval()
        >>> supernet.set_subnet(supernet.space.published('s0'))
        >>> print(tuple(supernet(torch.rand(1, 3, 224, 224))[-1].shape))
        (1, 176, 7, 7)
    """

    def __init__(self,
                 space: Union[EfficientFormerV2Space, dict, None] = None,
                 **kwargs) -> None:
        if 'arch' in kwargs:
            raise TypeError('EfficientFormerV2Supernet takes a space, not an '
                            'arch: its arch is the space\'s largest')
        if space is None:
            space = EfficientFormerV2Space.default()
        elif isinstance(space, dict):
            space = EfficientFormerV2Space.from_dict(space)
        self.space = space
        largest = space.largest()
        arch = dict(
            largest,
            num_attn_blocks=largest['depths'][2:],
            mlp_ratios=[[space.mlp_ratios[-1]] * d for d in largest['depths']])
        super().__init__(arch=arch, **kwargs)
        make_elastic(self)
        fingerprint = list(space.fingerprint().encode())
        self.register_buffer('space_fingerprint',
                             torch.tensor(fingerprint, dtype=torch.uint8))
        self.arch = None
        self.set_largest()

    def make_block(self, stage: int, index: int,
                   drop_path_rate: float) -> nn.Module:
        token_mixer = None
        if stage >= 2:
            token_mixer = Attention4D(
                self.channels[stage],
                self.stage_grid(stage),
                stride=2 if stage == 2 else 1)
        return ElasticBlock(
            self.channels[stage],
            mlp_ratio=self.arch_settings['mlp_ratios'][stage][index],
            token_mixer=token_mixer,
            mid_conv=True,
            drop_path_rate=drop_path_rate,
            layer_scale_init_value=self.layer_scale_init_value)

    # -- choosing a subnet -----------------------------------------------

    def set_subnet(self, arch: dict) -> dict:
        """Run ``arch`` from now on.

        Args:
            arch (dict): An arch of the space (``num_attn_blocks`` one count
                or a pair).

        Returns:
            dict: The arch, normalised by :meth:`EfficientFormerV2Space.check`.

        Raises:
            ArchOutsideSpaceError: Naming the stage or block outside the
                space.
        """
        arch = self.space.check(arch)
        width = arch['channels']
        self.stem.conv1.conv.out_active = width[0] // 2
        self.stem.conv2.conv.out_active = width[0]
        counts = [0, 0, *arch['num_attn_blocks']]
        for i, stage in enumerate(self.stages):
            if stage.downsample is not None:
                stage.downsample.conv.conv.out_active = width[i]
                if stage.downsample.attn is not None:
                    stage.downsample.attn.proj.conv.out_active = width[i]
            depth = arch['depths'][i]
            for j, block in enumerate(stage.blocks):
                block.active = j < depth
                if not block.active:
                    continue
                block.use_token_mixer = j >= depth - counts[i]
                block.mlp.fc1.conv.out_active = int(width[i] *
                                                    arch['mlp_ratios'][i][j])
                block.mlp.fc2.conv.out_active = width[i]
                if block.token_mixer is not None:
                    block.token_mixer.proj.conv.out_active = width[i]
        self.arch = arch
        self.channels = list(width)
        return arch

    def set_largest(self) -> dict:
        """Run the largest arch of the space."""
        return self.set_subnet(self.space.largest())

    def set_smallest(self) -> dict:
        """Run the smallest arch of the space."""
        return self.set_subnet(self.space.smallest())

    def sample_subnet(self, rng: Optional[random.Random] = None) -> dict:
        """Run an arch drawn uniformly from the space.

        Args:
            rng (random.Random, optional): The random stream; Python's
                global one (which mmengine seeds) if None.

        Returns:
            dict: The arch.
        """
        return self.set_subnet(self.space.sample(rng or random))

    # -- extraction and checkpoints ---------------------------------------

    def subnet_config(self) -> dict:
        """The :class:`EfficientFormerV2` arguments of the subnet set:
        its arch plus this supernet's size-independent settings."""
        return dict(
            arch=self.arch,
            in_channels=self.in_channels,
            out_indices=self.out_indices,
            attn_ref_size=self.ref_size,
            final_norm=self.final_norm,
            layer_scale_init_value=self.layer_scale_init_value)

    def subnet_state_dict(
            self,
            arch: Optional[dict] = None) -> 'OrderedDict[str, torch.Tensor]':
        """The weights of an :class:`EfficientFormerV2` of ``arch``.

        The state dict loads strictly into ``EfficientFormerV2(**config)``
        with ``config`` from :meth:`subnet_config` (its ``out_norm_cfg``
        and ``frozen_stages`` as this supernet's), and that model's outputs
        equal this supernet's with ``arch`` set.

        Args:
            arch (dict, optional): An arch of the space; the one set if
                None. Sets it.

        Returns:
            OrderedDict[str, Tensor]: The subnet's weights.
        """
        if arch is not None:
            self.set_subnet(arch)
        with torch.device('meta'):
            target = EfficientFormerV2(**self.subnet_config())
        return slice_state_dict(self.state_dict(), target.state_dict())

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args,
                              **kwargs) -> None:
        found = state_dict.get(prefix + 'space_fingerprint')
        own = self.space_fingerprint
        if found is not None and (found.shape != own.shape
                                  or not torch.equal(found.cpu(), own.cpu())):
            theirs = bytes(found.tolist()).decode(errors='replace')
            raise SpaceMismatchError(
                'The checkpoint holds a supernet of another search space '
                f'(fingerprint {theirs}, this model\'s '
                f'{self.space.fingerprint()}); use the '
                'space it was trained with (model.backbone.space of its '
                'config) or train a supernet of this space')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
