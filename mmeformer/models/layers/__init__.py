"""Building blocks shared by EfficientFormer V1 and V2."""
from .attention_bias import AttentionBias
from .conv_bn import conv_bn
from .downsample import Downsample
from .fusion import FusionReport, fuse_conv_bn
from .layer_scale import LayerScale
from .meta_block import MetaBlock2d
from .mlp import ConvMlp, LinearMlp
from .norm import LayerNorm2d
from .stem import Stem

__all__ = [
    'AttentionBias', 'conv_bn', 'ConvMlp', 'Downsample', 'FusionReport',
    'fuse_conv_bn', 'LayerNorm2d', 'LayerScale', 'LinearMlp', 'MetaBlock2d',
    'Stem'
]
