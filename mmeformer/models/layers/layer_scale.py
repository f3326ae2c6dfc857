"""Learned per-channel residual branch scale."""
import torch
import torch.nn as nn


class LayerScale(nn.Module):
    """Multiply the input by a learned per-channel vector.

    The vector is stored flat, shape ``(channels,)``, whatever the layout.

    Args:
        channels (int): Number of channels.
        init_value (float): Initial value of every entry. Defaults to 1e-5.
        data_format (str): ``'channels_first'`` for ``(N, C, ...)`` inputs,
            ``'channels_last'`` for ``(..., C)`` token inputs.
            Defaults to ``'channels_first'``.

    Example:
        >>> import torch
        >>> from mmeformer.models.layers import LayerScale
        >>> ls = LayerScale(16, init_value=0.5)
        >>> print(float(ls(torch.ones(1, 16, 4, 4)).mean()))
        0.5
    """

    def __init__(self,
                 channels: int,
                 init_value: float = 1e-5,
                 data_format: str = 'channels_first') -> None:
        super().__init__()
        if data_format not in ('channels_first', 'channels_last'):
            raise ValueError("data_format must be 'channels_first' or "
                             f"'channels_last', got {data_format!r}")
        self.data_format = data_format
        self.weight = nn.Parameter(torch.full((channels, ), init_value))

    def extra_repr(self) -> str:
        return f'{self.weight.numel()}, data_format={self.data_format}'

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.data_format == 'channels_last':
            return x * self.weight
        return x * self.weight.view(-1, *([1] * (x.dim() - 2)))
