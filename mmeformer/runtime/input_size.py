"""Refuse an input size the model cannot take, before it is counted or
exported.

The backbones refuse inputs smaller than their ``min_input_size`` in
``forward``, but not while traced: a trace must stay valid for every size.
mmengine's FLOP counter and the ONNX export trace the model, so without this
check ``get_flops.py --shape 16`` prints numbers for a 16x16 input and an
export at that size succeeds. :func:`check_input_size` reads the size as the
tools spell it and asks the model's backbone what it takes.
"""
from typing import Sequence, Union

import torch.nn as nn

from ..utils import Grid, Size, parse_size
from .errors import UnsupportedOptionError

__all__ = ['check_input_size']


def check_input_size(model: nn.Module,
                     size: Union[Size, Sequence[int]],
                     option: str = '--shape') -> Grid:
    """Read ``size`` and check that ``model`` takes inputs of that size.

    Args:
        model (nn.Module): A classifier, detector or segmentor with a
            ``backbone``, or a backbone; it may live on the ``meta`` device.
            Backbones without ``min_input_size`` (not ours) are not checked.
        size (int | str | Sequence[int]): ``[size]`` or ``[height, width]``
            as ``argparse`` gives them, or any spelling of
            :func:`~mmeformer.utils.parse_size`.
        option (str): The option the size comes from, for the message.
            Defaults to '--shape'.

    Returns:
        tuple[int, int]: ``(height, width)``.

    Raises:
        UnsupportedOptionError: If the size cannot be read, or a side is
            smaller than the backbone takes.
    """
    if isinstance(size, (list, tuple)) and len(size) == 1:
        size = size[0]
    try:
        height, width = parse_size(size, option)
    except ValueError as e:
        raise UnsupportedOptionError(str(e)) from None
    backbone = getattr(model, 'backbone', model)
    least = getattr(backbone, 'min_input_size', 1)
    if min(height, width) < least:
        raise UnsupportedOptionError(
            f'{option}: input size {height}x{width} is too small: '
            f'{type(backbone).__name__} takes inputs of at least '
            f'{least}x{least}; pass {option} {least} or more')
    return height, width
