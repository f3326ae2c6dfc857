"""The demo's data: a synthetic shapes set drawn in COCO and ADE20K layouts
(``tools/demo.py``, ``tools/dataset_converters/make_shapes.py`` and the
tests train on it)."""
from .shapes import (SHAPES_CLASSES, SHAPES_FORMAT_VERSION, SHAPES_PALETTE,
                     SHAPES_SEG_CLASSES, SHAPES_SEG_PALETTE, generate_shapes,
                     is_shapes_dataset, shapes_meta)

__all__ = [
    'SHAPES_CLASSES', 'SHAPES_SEG_CLASSES', 'SHAPES_PALETTE',
    'SHAPES_SEG_PALETTE', 'SHAPES_FORMAT_VERSION', 'generate_shapes',
    'shapes_meta', 'is_shapes_dataset'
]
