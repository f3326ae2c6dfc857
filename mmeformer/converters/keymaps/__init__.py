"""Key layouts of the code bases checkpoints are converted from."""
from .base import KeyMapping, Location, SourceLayout, map_keys
from .mmpretrain import MMPRETRAIN
from .official import OFFICIAL, OFFICIAL_DET, OFFICIAL_SEG
from .timm import TIMM

#: Every supported source layout by its ``--source`` name.
SOURCES = {
    layout.name: layout
    for layout in (OFFICIAL, TIMM, MMPRETRAIN, OFFICIAL_DET, OFFICIAL_SEG)
}

__all__ = ['KeyMapping', 'Location', 'SourceLayout', 'map_keys', 'SOURCES']
