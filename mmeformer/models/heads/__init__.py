"""Classification heads."""
from .efficientformer_head import EfficientFormerClsHead

__all__ = ['EfficientFormerClsHead']
