"""Measure whole networks in a table's runtime and score its predictions."""
import hashlib
import json
import statistics
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Union

from .blocks import build_network
from .predictor import resolve_arch
from .table import LatencyTable, LatencyTableError
from .timing import Runner, best_latencies, device_name, torch_threads

__all__ = ['measure_networks', 'prediction_errors']


def measure_networks(
        archs: Sequence[Union[str, dict]],
        table: LatencyTable,
        repeats: Optional[int] = None,
        warmup: Optional[int] = None,
        group_size: int = 4,
        work_dir: Optional[str] = None,
        log: Optional[Callable[[str], None]] = None) -> List[float]:
    """The fastest milliseconds of whole networks, measured as the table was.

    Each network (:func:`~.blocks.build_network`: the classifier if the
    table holds heads, else the dense backbone) runs in the table's runtime,
    precision, input size and threads, ``group_size`` networks interleaved.

    Args:
        archs (Sequence[str | dict]): Published names (V1 if the table
            holds their blocks, V2) or V2 arch dicts of the table's space,
            as :func:`~.predictor.predict_latency` takes them.
        table (LatencyTable): The table, measured on this machine's CPU.
        repeats (int, optional): Timed runs; the table's if None.
        warmup (int, optional): Untimed runs first; the table's if None.
        group_size (int): Networks timed together. Defaults to 4.
        work_dir (str, optional): Folder of the exported networks; a
            temporary one if None. Defaults to None.
        log (Callable[[str], None], optional): Called with a progress line
            per group. Defaults to None.

    Returns:
        list[float]: Milliseconds per arch.

    Raises:
        LatencyTableError: If the table was measured on another CPU, or
            cannot predict one of ``archs`` (checked before measuring).
        ArchOutsideSpaceError: If an arch is outside the table's space.
    """
    meta = table.meta
    if meta['device'] != device_name():
        raise LatencyTableError(
            f"the table was measured on {meta['device']}, this machine is "
            f'{device_name()}: measure networks where the table was made')
    archs = [resolve_arch(arch, table) for arch in archs]
    size = meta['input_size']
    repeats = meta['repeats'] if repeats is None else repeats
    warmup = meta['warmup'] if warmup is None else warmup
    times: List[float] = []
    with tempfile.TemporaryDirectory() as tmp, torch_threads(meta['threads']):
        runner = Runner(meta['runtime'], meta['precision'], meta['threads'],
                        work_dir or tmp)
        for first in range(0, len(archs), group_size):
            group = archs[first:first + group_size]
            runs = [
                runner.prepare(
                    build_network(arch, size, table.with_head), (1, 3, *size),
                    f'net_{_arch_hash(arch)}_{size[0]}x'
                    f'{size[1]}') for arch in group
            ]
            times += best_latencies(runs, repeats, warmup)
            del runs
            if log is not None:
                log(f'{len(times)}/{len(archs)} networks measured')
    return times


def _arch_hash(arch: dict) -> str:
    text = json.dumps(arch, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def prediction_errors(predicted: Sequence[float],
                      measured: Sequence[float]) -> Dict[str, float]:
    """How well predictions rank and match measurements.

    Args:
        predicted (Sequence[float]): Predicted milliseconds.
        measured (Sequence[float]): Measured milliseconds, same order.

    Returns:
        dict[str, float]: ``median_error`` and ``worst_error`` (relative,
        ``|predicted - measured| / measured``), ``mean_signed_error``
        (relative, positive when predictions run high) and
        ``kendall_tau`` (rank correlation).
    """
    from scipy.stats import kendalltau
    errors = [(p - m) / m for p, m in zip(predicted, measured)]
    absolute = [abs(e) for e in errors]
    return dict(
        median_error=statistics.median(absolute),
        worst_error=max(absolute),
        mean_signed_error=statistics.mean(errors),
        kendall_tau=float(kendalltau(predicted, measured)[0]))
