"""GroupNorm that ONNX Runtime computes as accurately as PyTorch.

PyTorch exports ``nn.GroupNorm`` as ``InstanceNormalization`` of the
grouped tensor. ONNX Runtime's CPU kernel sums each group in one float32
pass, so its error grows with the group's size: for the GroupNorm of one
group on V1's stride-4 output (48 channels at 128x128 or 200x304: 0.8-2.9
million values) the normalised map is 1-5e-4 of its magnitude away from
PyTorch, whose own float32 result is within 2e-7 of float64. A single
``ReduceMean`` over the whole group has the same trouble (5e-5).

:class:`ExportGroupNorm` exports the same function as a mean of means:
over the width, then the height, then the group's channels, each a short
sum. All groups have equal sizes, so the mean of means is the mean; the
variance is the mean of the centred squares, taken the same way. ONNX
Runtime then matches PyTorch within 5e-7. Outside an ONNX export the
module runs ``nn.GroupNorm``'s own kernel, so eager outputs do not change.
"""
import torch
import torch.nn as nn

__all__ = ['ExportGroupNorm', 'swap_group_norms']


class ExportGroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` whose ONNX graph ONNX Runtime computes accurately.

    Same arguments, parameters and state dict as ``nn.GroupNorm``. While
    ``torch.onnx.export`` traces it, a 4-D input is normalised with the
    per-axis means described in :mod:`mmeformer.deployment.group_norm`;
    otherwise (eager, other tracers, other ranks) it is ``nn.GroupNorm``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.onnx.is_in_onnx_export() or x.dim() != 4:
            return super().forward(x)
        batch, channels, height, width = x.shape
        groups = x.reshape(batch, self.num_groups, -1, height, width)
        mean = _mean_per_group(groups)
        centred = groups - mean
        variance = _mean_per_group(centred * centred)
        normalised = (centred * torch.rsqrt(variance + self.eps)).reshape(
            batch, channels, height, width)
        if not self.affine:
            return normalised
        return normalised * self.weight.view(1, -1, 1, 1) + self.bias.view(
            1, -1, 1, 1)


def _mean_per_group(groups: torch.Tensor) -> torch.Tensor:
    """Mean of a ``(N, G, C/G, H, W)`` tensor over its last three axes,
    one axis at a time (short float32 sums in ONNX Runtime)."""
    for dim in (4, 3, 2):
        groups = groups.mean(dim=dim, keepdim=True)
    return groups


def swap_group_norms(model: nn.Module) -> nn.Module:
    """Replace every ``nn.GroupNorm`` of ``model`` by an
    :class:`ExportGroupNorm` sharing its parameters, in place.

    Returns:
        nn.Module: ``model``.
    """
    for module in list(model.modules()):
        for name, child in module.named_children():
            if type(child) is nn.GroupNorm:
                swapped = ExportGroupNorm(child.num_groups, child.num_channels,
                                          child.eps, child.affine)
                if child.affine:
                    swapped.weight, swapped.bias = child.weight, child.bias
                setattr(module, name, swapped.train(child.training))
    return model
