"""Report and verify the software stack mmeformer runs on."""
import importlib
from collections import OrderedDict
from typing import Callable, Dict, List, Tuple

import torch
from mmengine.utils.dl_utils import collect_env as collect_base_env

from mmeformer.version import __version__

#: Host packages whose model modules must import.
HOST_MODEL_MODULES = ('mmpretrain.models', 'mmdet.models', 'mmseg.models')


def collect_env() -> Dict[str, str]:
    """Collect the versions of the stack.

    Returns:
        dict: mmengine's environment report plus mmcv, the three hosts,
        torchvision and mmeformer. torch's build summary keeps its lines but
        the "Build settings" one, some 2,000 characters of compiler flags
        (``torch.__config__.show()`` prints it in full).
    """
    env_info = collect_base_env()
    details = env_info.get('PyTorch compiling details')
    if isinstance(details, str):
        env_info['PyTorch compiling details'] = '\n'.join(
            line for line in details.splitlines()
            if not line.strip().startswith('- Build settings:'))
    for name in ('torchvision', 'mmcv', 'mmpretrain', 'mmdet', 'mmseg'):
        try:
            env_info[name] = importlib.import_module(name).__version__
        except Exception as e:  # report, do not hide, a broken install
            env_info[name] = f'unavailable ({type(e).__name__}: {e})'
    env_info['mmeformer'] = __version__
    return env_info


def _check_mmcv_ops() -> str:
    from mmcv.ops import RoIAlign, nms
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.],
                          [50., 50., 60., 60.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    if keep.tolist() != [0, 2]:
        raise RuntimeError(f'mmcv nms kept {keep.tolist()}, expected [0, 2]')
    feats = torch.arange(16.).reshape(1, 1, 4, 4)
    rois = torch.tensor([[0., 0., 0., 4., 4.]])
    pooled = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2)(feats, rois)
    if pooled.shape != (1, 1, 2, 2):
        raise RuntimeError(f'mmcv RoIAlign gave shape {tuple(pooled.shape)}')
    return 'nms and RoIAlign (compiled ops) give the expected results'


def _check_torchvision() -> str:
    import torchvision
    from torchvision.ops import nms
    nms(torch.rand(4, 4), torch.rand(4), 0.5)
    return f'torchvision {torchvision.__version__} ops load with torch'


def _import_host_models() -> str:
    for module in HOST_MODEL_MODULES:
        importlib.import_module(module)
    return ', '.join(HOST_MODEL_MODULES) + ' import'


def verify_environment() -> List[Tuple[str, bool, str]]:
    """Run the checks a working environment passes.

    Returns:
        list[tuple]: ``(check, passed, detail)`` for every check.
    """
    checks: 'OrderedDict[str, Callable[[], str]]' = OrderedDict(
        torchvision=_check_torchvision,
        mmcv_ops=_check_mmcv_ops,
        host_models=_import_host_models)
    results = []
    for name, check in checks.items():
        try:
            results.append((name, True, check()))
        except Exception as e:
            results.append((name, False, f'{type(e).__name__}: {e}'))
    return results
