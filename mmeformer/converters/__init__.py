"""Convert the official, timm and mmpretrain EfficientFormer checkpoints to
mmeformer (``docs/converters.md``, ``tools/model_converters/``)."""
from .bias import BIAS_MODES
from .convert import ConversionReport, convert_checkpoint, save_checkpoint
from .errors import ConversionError
from .layouts import SOURCES, detect_source, is_mmeformer_layout
from .variants import Variant, all_variants, parse_variant

__all__ = [
    'BIAS_MODES', 'ConversionError', 'ConversionReport', 'SOURCES', 'Variant',
    'all_variants', 'convert_checkpoint', 'detect_source',
    'is_mmeformer_layout', 'parse_variant', 'save_checkpoint'
]
