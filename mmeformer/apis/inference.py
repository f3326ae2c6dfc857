"""Build a model of one of our configs and run it on images, in its host.

The host (MMPretrain, MMDetection or MMSegmentation) is the config's
``default_scope`` (see :mod:`mmeformer.runtime.hosts`); its own inference
API does the work: ``mmpretrain.get_model`` and
``ImageClassificationInferencer``, ``mmdet.apis.init_detector`` and
``inference_detector``, ``mmseg.apis.init_model`` and ``inference_model``.
What is added here: the choice of host, the ``mmeformer::`` config prefix,
and a checkpoint read and compared with the model before it is loaded, so
that one of another model is refused instead of loaded in part.
"""
import copy
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from mmeformer.runtime import (MissingResourceError, build_meta_model,
                               check_checkpoint, get_host, load_config)

__all__ = ['init_model', 'inference_model']

ImageType = Union[str, np.ndarray]

#: What to do instead of loading a checkpoint that does not fit, for the
#: message of :func:`init_model`.
PARTIAL_LOAD_HINT = ('pass strict=False to load only the tensors that fit '
                     '(the others keep their initial values)')


def _init_classifier(cfg: Config, checkpoint: Optional[str],
                     device: str) -> nn.Module:
    from mmpretrain.apis import get_model
    model = get_model(cfg, pretrained=checkpoint or False, device=device)
    model.cfg = cfg
    return model


def _init_detector(cfg: Config, checkpoint: Optional[str],
                   device: str) -> nn.Module:
    from mmdet.apis import init_detector
    return init_detector(cfg, checkpoint, device=device)


def _init_segmentor(cfg: Config, checkpoint: Optional[str],
                    device: str) -> nn.Module:
    from mmseg.apis import init_model as init_segmentor

    # mmseg's init_model fails with a KeyError on a checkpoint without
    # 'meta' (the converters' files), so the checkpoint is loaded here.
    model = init_segmentor(cfg, device=device)
    if checkpoint is not None:
        loaded = load_checkpoint(model, checkpoint, map_location='cpu')
        dataset_meta = loaded.get('meta', {}).get('dataset_meta')
        if dataset_meta:
            model.dataset_meta = dataset_meta
    return model


def _classify(model: nn.Module, images: List[ImageType]) -> list:
    from mmpretrain.apis import ImageClassificationInferencer
    inferencer = ImageClassificationInferencer(model)
    return inferencer(images, return_datasamples=True)


def _detect(model: nn.Module, images: List[ImageType]) -> list:
    from mmdet.apis import inference_detector
    return inference_detector(model, images)


def _segment(model: nn.Module, images: List[ImageType]) -> list:
    from mmseg.apis import inference_model as inference_segmentor
    return inference_segmentor(model, images)


#: Per host scope: the host's model builder and inference function.
INIT: Dict[str, Callable[[Config, Optional[str], str], nn.Module]] = {
    'mmpretrain': _init_classifier,
    'mmdet': _init_detector,
    'mmseg': _init_segmentor,
}
INFER: Dict[str, Callable[[nn.Module, List[ImageType]], list]] = {
    'mmpretrain': _classify,
    'mmdet': _detect,
    'mmseg': _segment,
}


def init_model(config: Union[str, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None,
               strict: bool = True) -> nn.Module:
    """Build the model of ``config`` in its host and load ``checkpoint``.

    The host is the config's ``default_scope``: an image classifier of
    MMPretrain, a detector of MMDetection or a segmentor of MMSegmentation,
    built by the host's own API and left in eval mode on ``device``, with
    the config in ``model.cfg``. Its modules are registered and it becomes
    the default scope. The backbone's ``init_cfg`` (e.g. ImageNet weights)
    is not loaded: without ``checkpoint`` the weights are random.

    Args:
        config (str | Config): A config file (``mmeformer::`` and the hosts'
            prefixes work in its ``_base_``) or a loaded config.
        checkpoint (str, optional): Weights to load, e.g. from
            ``tools/train.py``; they must fit the model, tensor by tensor.
            Defaults to None.
        device (str): Where the model runs, e.g. 'cpu' or 'cuda:0'.
            Defaults to 'cpu'.
        cfg_options (dict, optional): Config overrides, as
            ``--cfg-options`` of the tools. Defaults to None.
        strict (bool): Refuse a checkpoint whose tensors do not all fit the
            model. With False the host loads what fits and warns about the
            rest. Defaults to True.

    Returns:
        nn.Module: The model, for :func:`inference_model`.

    Raises:
        ConfigError: If the config file does not exist or cannot be read,
            or its model cannot be built.
        UnknownHostError: If ``default_scope`` names no supported host.
        MissingResourceError: If ``checkpoint`` does not exist.
        CheckpointError: If ``checkpoint`` cannot be read or, with
            ``strict``, does not fit the model.

    Examples:
        >>> from mmeformer.apis import init_model, inference_model
        >>> model = init_model('configs/demo/fpn_eformerv2_s0_shapes.py')
        >>> type(model).__name__
        'EncoderDecoder'
        >>> import numpy as np
        >>> image = np.zeros((64, 96, 3), dtype=np.uint8)
        >>> inference_model(model, image).pred_sem_seg.data.shape
        torch.Size([1, 64, 96])
    """
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        name = cfg.filename or 'the config'
    else:
        cfg = load_config(config, cfg_options)
        name = config
    host = get_host(cfg)
    if checkpoint is not None:
        if '://' not in checkpoint and not osp.isfile(checkpoint):
            raise MissingResourceError([(checkpoint, 'checkpoint', '')])
        # Read and compared first, on the meta device: the hosts load
        # non-strictly, and a file of another model would only warn.
        check_checkpoint(
            build_meta_model(cfg, host),
            checkpoint,
            name,
            partial=not strict,
            partial_hint=PARTIAL_LOAD_HINT)
    host.register_modules()
    return INIT[host.scope](cfg, checkpoint, device)


def inference_model(model: nn.Module, image: Union[ImageType,
                                                   Sequence[ImageType]]):
    """Run ``model`` on an image or a list of images, as its host does.

    The images go through the test pipeline of the model's config (the
    file is loaded, resized and normalised as in ``tools/test.py``), in the
    scope of the model's host.

    Args:
        model (nn.Module): A model from :func:`init_model`.
        image (str | np.ndarray | Sequence): An image file, a ``(H, W, 3)``
            BGR ``uint8`` array as ``mmcv.imread`` gives, or a list of them.

    Returns:
        The host's data sample, or a list of them for a list of images:
        a ``mmpretrain.structures.DataSample`` with ``pred_score`` and
        ``pred_label``, a ``mmdet.structures.DetDataSample`` with
        ``pred_instances`` (``bboxes``, ``scores``, ``labels``, ``masks``) or
        a ``mmseg.structures.SegDataSample`` with ``seg_logits`` and
        ``pred_sem_seg`` at the image's size.

    Raises:
        ValueError: If ``model`` does not come from :func:`init_model`.
        UnknownHostError: If its config names no supported host.
        FileNotFoundError: If an image file does not exist.

    Examples:
        >>> from mmeformer.apis import init_model, inference_model
        >>> model = init_model(
        ...     'configs/classification/eformerv2_s0_in1k.py',
        ...     cfg_options={'model.head.num_classes': 3})
        >>> import numpy as np
        >>> image = np.zeros((32, 32, 3), dtype=np.uint8)
        >>> inference_model(model, image).pred_score.shape
        torch.Size([3])
    """
    cfg = getattr(model, 'cfg', None)
    if not isinstance(cfg, Config):
        raise ValueError(
            f'{type(model).__name__} has no config in model.cfg: build the '
            'model with mmeformer.apis.init_model')
    host = get_host(cfg)
    single = not isinstance(image, (list, tuple))
    images = [image] if single else list(image)
    for item in images:
        if isinstance(item, str) and not osp.isfile(item):
            raise FileNotFoundError(f'{item}: no such image file')
    with DefaultScope.overwrite_default_scope(host.scope):
        results = INFER[host.scope](model, images)
    return results[0] if single else results
