"""EfficientFormer V1 and V2 backbones."""
from .base import BaseEfficientFormer, EfficientFormerStage
from .efficientformer import EfficientFormer
from .efficientformer_v2 import EfficientFormerV2

__all__ = [
    'BaseEfficientFormer', 'EfficientFormer', 'EfficientFormerStage',
    'EfficientFormerV2'
]
