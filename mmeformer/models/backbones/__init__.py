"""EfficientFormer V1 and V2 backbones."""
from .base import BaseEfficientFormer, EfficientFormerStage
from .efficientformer import EfficientFormer
from .efficientformer_v2 import EfficientFormerV2
from .efficientformer_v2_space import (ArchOutsideSpaceError,
                                       EfficientFormerV2Space)
from .efficientformer_v2_supernet import EfficientFormerV2Supernet

__all__ = [
    'ArchOutsideSpaceError', 'BaseEfficientFormer', 'EfficientFormer',
    'EfficientFormerStage', 'EfficientFormerV2', 'EfficientFormerV2Space',
    'EfficientFormerV2Supernet'
]
