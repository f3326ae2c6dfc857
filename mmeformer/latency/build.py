"""Measure a latency table: every block of a space (and of the published V1
networks) in one runtime, resumably, a group of blocks at a time."""
import os.path as osp
import tempfile
import time
from typing import Callable, Optional

import torch

from mmeformer.models.backbones import EfficientFormerV2Space
from mmeformer.utils import Size, parse_size
from .blocks import CLASSIFIER_SIZES, block_input_shape, build_block
from .table import LatencyTable, LatencyTableError
from .timing import (Runner, best_latencies, check_runtime, device_name,
                     runtime_versions, torch_threads)

__all__ = ['build_table', 'table_meta', 'MIN_INPUT_SIZE']

#: Smallest input side: the network downsamples by 32.
MIN_INPUT_SIZE = 32

#: Meta fields two measurements must share to go into one table.
_IDENTITY = ('runtime', 'precision', 'input_size', 'with_head', 'device',
             'threads', 'space_fingerprint', 'versions', 'repeats', 'warmup')


def table_meta(space: EfficientFormerV2Space,
               runtime: str,
               precision: str,
               input_size: Size,
               threads: Optional[int] = None,
               repeats: int = 30,
               warmup: int = 5,
               with_head: Optional[bool] = None,
               with_v1: Optional[bool] = None) -> dict:
    """The meta of a table measured here with these settings.

    Args:
        space (EfficientFormerV2Space): The search space.
        runtime (str): One of :data:`~.timing.RUNTIMES`.
        precision (str): The precision.
        input_size (int | str | Sequence[int]): The network's input size.
        threads (int, optional): CPU threads; torch's current number if
            None. Defaults to None.
        repeats (int): Timed runs per block. Defaults to 30.
        warmup (int): Untimed runs per block first. Defaults to 5.
        with_head (bool, optional): Include the classifier head; None for
            an input size in :data:`~.blocks.CLASSIFIER_SIZES`.
            Defaults to None.
        with_v1 (bool, optional): Also hold the blocks of the published V1
            networks (:func:`~.blocks.v1_blocks`); None for an input size
            in :data:`~.blocks.CLASSIFIER_SIZES`, where they are ImageNet
            classifiers. Defaults to None.

    Returns:
        dict: See :class:`LatencyTable`.

    Raises:
        ValueError: On an unknown or unavailable runtime or precision, a
            size under 32 pixels or non-positive counts.
    """
    check_runtime(runtime, precision)
    size = parse_size(input_size, 'input_size')
    if min(size) < MIN_INPUT_SIZE:
        raise ValueError(f'input_size {size[0]}x{size[1]} is too small: the '
                         f'network needs at least {MIN_INPUT_SIZE} pixels a '
                         'side')
    if repeats < 1 or warmup < 0 or (threads is not None and threads < 1):
        raise ValueError('repeats and threads must be at least 1 and warmup '
                         f'at least 0, got {repeats}, {threads}, {warmup}')
    if with_head is None:
        with_head = size in CLASSIFIER_SIZES
    if with_v1 is None:
        with_v1 = size in CLASSIFIER_SIZES
    return dict(
        runtime=runtime,
        precision=precision,
        input_size=list(size),
        with_head=bool(with_head),
        device=device_name(),
        threads=int(threads or torch.get_num_threads()),
        versions=runtime_versions(runtime),
        repeats=int(repeats),
        warmup=int(warmup),
        space=space.to_dict(),
        space_fingerprint=space.fingerprint(),
        with_v1=bool(with_v1))


def _resume(path: str, meta: dict) -> LatencyTable:
    table = LatencyTable.load(path, allow_incomplete=True)
    for name in _IDENTITY:
        if table.meta[name] != meta[name]:
            raise LatencyTableError(
                f'{path} was measured with {name} {table.meta[name]}, not '
                f'{meta[name]}; tables are never mixed: write to another '
                'path, or start this one afresh (resume=False, --no-resume)')
    # Measured entries are never dropped: asking for the V1 blocks adds
    # them to a table without them, not asking keeps those it holds.
    table.meta['with_v1'] = table.with_v1 or meta['with_v1']
    return table


def build_table(space: EfficientFormerV2Space,
                runtime: str,
                precision: str = 'fp32',
                input_size: Size = 224,
                path: str = 'latency.json',
                threads: Optional[int] = None,
                repeats: int = 30,
                warmup: int = 5,
                resume: bool = True,
                with_head: Optional[bool] = None,
                with_v1: Optional[bool] = None,
                group_size: int = 8,
                work_dir: Optional[str] = None,
                log: Optional[Callable[[str], None]] = None) -> LatencyTable:
    """Measure every block of ``space`` where it runs, into a table file.

    Each block (:func:`~.blocks.space_blocks`, then with ``with_v1`` the
    blocks of the published V1 networks, :func:`~.blocks.v1_blocks`) is
    built alone, as the network builds it, with the attention biases of
    ``input_size``, and
    timed on its own input, the feature map it gets in a network fed
    ``input_size`` images. Blocks are timed ``group_size`` at a time,
    their runs interleaved, so that a changing load affects a group alike;
    the exported runtimes keep one open session per block of the group.
    After every group the table is written atomically: an interrupted build
    leaves a valid, incomplete file, and a rerun measures only what it
    lacks (if its settings are the same; it refuses to mix others).

    Args:
        space (EfficientFormerV2Space): The search space.
        runtime (str): ``'torch'`` (eager, BatchNorm folded),
            ``'onnxruntime'`` or ``'openvino'``.
        precision (str): ``'fp32'``; OpenVINO also ``'fp16'`` or ``'bf16'``
            where the CPU supports them. Defaults to ``'fp32'``.
        input_size (int | str | Sequence[int]): The network's input size,
            e.g. 224 or ``(800, 1216)``. Defaults to 224.
        path (str): The ``.json`` table; its folder must exist.
            Defaults to ``'latency.json'``.
        threads (int, optional): CPU threads of every runtime; torch's
            current number if None. Defaults to None.
        repeats (int): Timed runs per block (the fastest is kept).
            Defaults to 30.
        warmup (int): Untimed runs per block first. Defaults to 5.
        resume (bool): Keep the entries of an existing file at ``path``
            measured with the same settings (a resumed table keeps the V1
            blocks it holds). Defaults to True.
        with_head (bool, optional): Include the classifier head; None for
            the classifier input size 224. Defaults to None.
        with_v1 (bool, optional): Include the blocks of the published V1
            networks L1, L3 and L7; None for the classifier input size 224.
            Resuming a table without them (one of an older mmeformer)
            measures only them. Defaults to None.
        group_size (int): Blocks timed together. Defaults to 8.
        work_dir (str, optional): Folder for the exported blocks, reused
            by later builds (ONNX Runtime and OpenVINO can share one);
            a temporary folder if None. Defaults to None.
        log (Callable[[str], None], optional): Called with a progress line
            after each group. Defaults to None.

    Returns:
        LatencyTable: The complete table, also written to ``path``.

    Raises:
        ValueError: Before anything is measured or written, on a bad
            runtime, precision, size or folder, or a file at ``path``
            measured with other settings (:class:`LatencyTableError`).
    """
    meta = table_meta(space, runtime, precision, input_size, threads, repeats,
                      warmup, with_head, with_v1)
    folder = osp.dirname(osp.abspath(path))
    if not osp.isdir(folder):
        raise LatencyTableError(
            f'cannot write {path}: the folder {folder} does not exist; '
            'create it first (mkdir -p)')
    if resume and osp.exists(path):
        table = _resume(path, meta)
    else:
        table = LatencyTable(meta)
    todo = table.missing()
    if not todo:
        return table
    size = meta['input_size']
    total = len(table.blocks())
    spent = table.meta.get('build_seconds', 0.)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, torch_threads(meta['threads']):
        runner = Runner(runtime, precision, meta['threads'], work_dir or tmp)
        for first in range(0, len(todo), group_size):
            group = todo[first:first + group_size]
            runs = [
                runner.prepare(
                    build_block(block, size), block_input_shape(block, size),
                    _file_name(block.key, size)) for block in group
            ]
            times = best_latencies(runs, repeats, warmup)
            del runs
            table.entries.update(
                (block.key, round(ms, 5)) for block, ms in zip(group, times))
            table.meta['build_seconds'] = round(
                spent + time.perf_counter() - start, 1)
            table.save(path)
            if log is not None:
                log(f'{len(table.entries)}/{total} blocks, '
                    f"{table.meta['build_seconds']:.0f} s")
    return table


def _file_name(key: str, size) -> str:
    return f"{key.replace(':', '_')}_{size[0]}x{size[1]}"
