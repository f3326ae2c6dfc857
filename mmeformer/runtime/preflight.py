"""Find missing datasets and checkpoints before anything is built.

Without these checks a missing COCO folder surfaces as a traceback from deep
inside a dataset class, after the model has been built, and a missing
ImageNet checkpoint as a long warning followed by training from random
weights. :func:`check_train` and :func:`check_test` look at every path a run
will read and raise one :class:`MissingResourceError` that names each missing
path, where in the config it comes from and how to get it.
"""
import os.path as osp
from typing import Any, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config

from ..utils import CHECKPOINT_HINTS
from .errors import MissingResourceError

__all__ = ['check_train', 'check_test']

#: How to get each dataset our configs use, by dataset type.
DATASET_HINTS = {
    'CocoDataset':
    'COCO 2017 comes from https://cocodataset.org (train2017, val2017 '
    'and annotations_trainval2017); arrange it as '
    'data/coco/{annotations,train2017,val2017} (configs/detection/README.md)',
    'ADE20KDataset':
    'ADE20K comes from http://sceneparsing.csail.mit.edu '
    '(ADEChallengeData2016.zip); unpack it to data/ade/ so that '
    'data/ade/ADEChallengeData2016/{images,annotations}/{training,validation}'
    ' exist (configs/segmentation/README.md)',
    'ImageNet':
    'ImageNet-1K comes from https://image-net.org; arrange it as '
    'data/imagenet/{train,val} with one folder per class, or add '
    'data/imagenet/meta/{train,val}.txt lists (configs/classification/'
    'README.md)',
}


def _is_local(path: Any) -> bool:
    return isinstance(path, str) and bool(path) and '://' not in path


def _short_type(cfg: dict) -> str:
    type_ = cfg.get('type', '')
    return type_.rsplit('.', 1)[-1] if isinstance(type_, str) else ''


def _iter_datasets(cfg: dict, where: str) -> Iterator[Tuple[dict, str]]:
    """Yield ``(dataset_cfg, key)`` for the datasets behind wrappers."""
    if 'dataset' in cfg and isinstance(cfg['dataset'], dict):
        yield from _iter_datasets(cfg['dataset'], f'{where}.dataset')
    elif 'datasets' in cfg:
        for i, dataset in enumerate(cfg['datasets']):
            yield from _iter_datasets(dataset, f'{where}.datasets[{i}]')
    else:
        yield cfg, where


def _dataset_problems(dataset: dict, where: str) -> List[Tuple[str, str, str]]:
    if dataset.get('backend_args'):
        # Remote storage (petrel, http...); only the backend can tell.
        return []
    hint = DATASET_HINTS.get(
        _short_type(dataset), 'prepare the dataset as its README describes')
    hint += (f', or point the config at your copy with --cfg-options '
             f'{where}.data_root=/path/to/it')
    data_root = dataset.get('data_root') or ''
    if _is_local(data_root) and not osp.isdir(data_root):
        # Nothing below a missing root can exist: report the root only.
        return [(data_root, f'{where}.data_root', hint)]

    def resolve(path: str) -> str:
        return path if osp.isabs(path) else osp.join(data_root, path)

    problems = []
    ann_file = dataset.get('ann_file')
    if _is_local(ann_file) and not osp.isfile(resolve(ann_file)):
        problems.append((resolve(ann_file), f'{where}.ann_file', hint))
    prefixes = dataset.get('data_prefix')
    if not prefixes and dataset.get('split'):
        # mmpretrain's ImageNet reads `<data_root>/<split>` by default.
        prefixes = dict(split=dataset['split'])
    if isinstance(prefixes, str):
        prefixes = dict(data_prefix=prefixes)
    for key, prefix in (prefixes or {}).items():
        if _is_local(prefix) and not osp.isdir(resolve(prefix)):
            key = 'split' if key == 'split' else f'data_prefix.{key}'
            problems.append((resolve(prefix), f'{where}.{key}', hint))
    return problems


def _evaluator_problems(evaluator: Any,
                        where: str) -> List[Tuple[str, str, str]]:
    metrics = evaluator if isinstance(evaluator,
                                      (list, tuple)) else [evaluator]
    problems = []
    for i, metric in enumerate(metrics):
        if not isinstance(metric, dict):
            continue
        key = where if len(metrics) == 1 else f'{where}[{i}]'
        ann_file = metric.get('ann_file')
        if _is_local(ann_file) and not osp.isfile(ann_file):
            problems.append(
                (ann_file, f'{key}.ann_file', DATASET_HINTS.get('CocoDataset')
                 if _short_type(metric) == 'CocoMetric' else ''))
    return problems


def _data_problems(cfg: Config,
                   splits: Sequence[str]) -> List[Tuple[str, str, str]]:
    problems = []
    seen = set()
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        for dataset, where in _iter_datasets(loader['dataset'],
                                             f'{split}_dataloader.dataset'):
            for problem in _dataset_problems(dataset, where):
                if problem[0] not in seen:
                    seen.add(problem[0])
                    problems.append(problem)
        for problem in _evaluator_problems(
                cfg.get(f'{split}_evaluator'), f'{split}_evaluator'):
            if problem[0] not in seen:
                seen.add(problem[0])
                problems.append(problem)
    return problems


def _iter_init_checkpoints(node: Any, where: str) -> Iterator[Tuple[str, str]]:
    """Yield ``(checkpoint, key)`` for every weight file a model loads."""
    if isinstance(node, dict):
        if _short_type(node) == 'Pretrained' and 'checkpoint' in node:
            yield node['checkpoint'], f'{where}.checkpoint'
        if isinstance(node.get('pretrained'), str):
            yield node['pretrained'], f'{where}.pretrained'
        for key, value in node.items():
            yield from _iter_init_checkpoints(value, f'{where}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _iter_init_checkpoints(value, f'{where}[{i}]')


def _checkpoint_problem(path: Optional[str], where: str,
                        kind: str) -> List[Tuple[str, str, str]]:
    if _is_local(path) and not osp.isfile(path):
        return [(path, where, CHECKPOINT_HINTS[kind])]
    return []


def check_train(cfg: Config) -> None:
    """Check what ``tools/train.py`` will read: data and checkpoints.

    The training and validation data, the evaluator's annotation file,
    ``load_from`` (unless resuming automatically) and every checkpoint the
    model's ``init_cfg`` loads. Call it with the final config, after the
    command-line overrides.

    Raises:
        MissingResourceError: Naming every missing path.
    """
    splits = ['train']
    if cfg.get('val_cfg') is not None:
        splits.append('val')
    problems = _data_problems(cfg, splits)
    problems += [
        problem
        for checkpoint, where in _iter_init_checkpoints(cfg.model, 'model')
        for problem in _checkpoint_problem(
            checkpoint, where,
            'teacher' if where.startswith('model.teacher.') else 'init')
    ]
    problems += _checkpoint_problem(
        cfg.get('load_from'), 'load_from',
        'resume' if cfg.get('resume') else 'load_from')
    if problems:
        raise MissingResourceError(problems)


def check_test(cfg: Config, checkpoint: str) -> None:
    """Check what ``tools/test.py`` will read: test data and the checkpoint.

    The model's ``init_cfg`` weights are not read when testing (the
    checkpoint replaces them), so they are not required.

    Raises:
        MissingResourceError: Naming every missing path.
    """
    problems = _checkpoint_problem(checkpoint, 'the checkpoint to test',
                                   'test')
    problems += _data_problems(cfg, ['test'])
    if problems:
        raise MissingResourceError(problems)
