"""Channel LayerNorm for ``(N, C, H, W)`` maps."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of every position of an NCHW map.

    Same parameters as :class:`torch.nn.LayerNorm` over ``C``, so it equals a
    token LayerNorm applied to the flattened map.

    Args:
        num_channels (int): Number of channels.
        eps (float): Added to the variance. Defaults to 1e-5.

    Example:
        >>> import torch
        >>> from mmeformer.models.layers import LayerNorm2d
        >>> print(tuple(LayerNorm2d(8)(torch.rand(2, 8, 3, 5)).shape))
        (2, 8, 3, 5)
    """

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__(num_channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias,
                         self.eps)
        return x.permute(0, 3, 1, 2)
