"""EfficientFormer models: backbones, shared layers and heads."""
from .backbones import (EfficientFormer, EfficientFormerV2,
                        EfficientFormerV2Supernet)
from .heads import EfficientFormerClsHead

__all__ = [
    'EfficientFormer', 'EfficientFormerV2', 'EfficientFormerV2Supernet',
    'EfficientFormerClsHead'
]
