"""Building blocks shared by EfficientFormer V1 and V2."""
from .attention_bias import AttentionBias
from .blocks import ConvMlp, Downsample, LinearMlp, MetaBlock2d, Stem
from .conv_bn import FusionReport, conv_bn, fuse_conv_bn

__all__ = [
    'AttentionBias', 'conv_bn', 'ConvMlp', 'Downsample', 'FusionReport',
    'fuse_conv_bn', 'LinearMlp', 'MetaBlock2d', 'Stem'
]
