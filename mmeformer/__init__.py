"""EfficientFormer V1 and V2 for MMPretrain, MMDetection and MMSegmentation."""
from .utils import register_config_prefix, register_safe_checkpoint_loader
from .version import __version__, version_info

# Importing mmeformer is all a script needs to inherit `mmeformer::` configs
# and to resume mmengine checkpoints under torch >= 2.6 (see mmeformer/utils).
register_config_prefix()
register_safe_checkpoint_loader()

__all__ = ['__version__', 'version_info']
