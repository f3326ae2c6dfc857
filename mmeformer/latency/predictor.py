"""Predict a network's latency from a table: the sum of its blocks' entries,
optionally corrected by a per-runtime fit against measured networks."""
from typing import Dict, List, Sequence, Union

import numpy as np

from mmeformer.models.backbones import ArchOutsideSpaceError, EfficientFormerV2
from .blocks import V1_ARCHS, arch_blocks, arch_family
from .table import LatencyTable, LatencyTableError

__all__ = [
    'resolve_arch', 'latency_parts', 'predict_latency', 'fit_correction',
    'PARTS'
]

#: The parts a prediction is summed in: the stem goes with stage 0, each
#: downsample with the stage it opens, the head with stage 3.
PARTS = ('stage0', 'stage1', 'stage2', 'stage3')


def resolve_arch(arch: Union[str, dict],
                 table: LatencyTable) -> Union[str, dict]:
    """What :func:`~.blocks.arch_blocks` takes for a published name or a V2
    arch dict, checked against the table.

    Args:
        arch (str | dict): A published V1 name (``'l1'``, ``'l3'``,
            ``'l7'``), a published V2 name (``'s0'`` ... ``'l'``) or an
            :class:`EfficientFormerV2` arch dict; names in any case.
        table (LatencyTable): The table.

    Returns:
        str | dict: The V1 name in lower case, or the V2 arch dict as
        :meth:`EfficientFormerV2Space.check` returns it.

    Raises:
        ArchOutsideSpaceError: On an unknown name, or naming the stage or
            block of a V2 ``arch`` the table's space does not hold.
        LatencyTableError: For a V1 name if the table holds no V1 blocks.
    """
    name = arch if isinstance(arch, str) else None
    if arch_family(arch) == 'v1':
        if not table.with_v1:
            raise LatencyTableError(
                f'arch {name!r} is a V1 network and the latency table holds '
                'no V1 blocks (it was built without them, or by an older '
                'mmeformer); add them by rerunning its build command with '
                '--v1, which resumes and measures only them')
        return name.lower()
    if name is not None:
        if name.lower() not in EfficientFormerV2.arch_zoo:
            raise ArchOutsideSpaceError(
                f'unknown arch {name!r}: give a V2 arch dict or one of '
                f'{sorted(EfficientFormerV2.arch_zoo) + list(V1_ARCHS)}')
        arch = table.space.published(name)
    try:
        return table.space.check(arch)
    except ArchOutsideSpaceError as error:
        what = f'arch {name!r}' if name else 'the arch'
        raise ArchOutsideSpaceError(
            f"{what} lies outside the latency table's search space: "
            f'{error}') from None


def latency_parts(arch: Union[str, dict],
                  table: LatencyTable) -> Dict[str, float]:
    """The summed milliseconds of an arch's blocks per part (:data:`PARTS`).

    Args:
        arch (str | dict): A published name (V1 ``'l1'``, ``'l3'``,
            ``'l7'`` if the table holds the V1 blocks; V2 ``'s0'`` ...
            ``'l'``) or an :class:`EfficientFormerV2` arch dict of the
            table's space.
        table (LatencyTable): The table.

    Returns:
        dict[str, float]: Milliseconds per part.

    Raises:
        ArchOutsideSpaceError: If the arch is outside the table's space.
        LatencyTableError: If the table lacks one of its blocks, or the V1
            blocks of a V1 name.
    """
    arch = resolve_arch(arch, table)
    parts = dict.fromkeys(PARTS, 0.)
    for block in arch_blocks(arch, table.with_head):
        if block.key not in table.entries:
            raise LatencyTableError(
                f'the latency table has no entry {block.key} '
                f'({block.describe()}); finish the table by rerunning its '
                'build command, which resumes')
        parts[PARTS[block.stage]] += table.entries[block.key]
    return parts


def predict_latency(arch: Union[str, dict],
                    table: LatencyTable,
                    corrected: bool = True) -> float:
    """Predicted latency of a whole network, in milliseconds.

    The sum of the table's entries for the network's blocks; with a
    correction in the table (and ``corrected``), ``overhead + sum_i
    scale_i * part_i`` over the parts of :func:`latency_parts`.

    Args:
        arch (str | dict): A published name (V1 ``'l1'``, ``'l3'``,
            ``'l7'`` if the table holds the V1 blocks; V2 ``'s0'`` ...
            ``'l'``) or an :class:`EfficientFormerV2` arch dict of the
            table's space.
        table (LatencyTable): The table.
        corrected (bool): Apply the table's correction if it has one.
            Defaults to True.

    Returns:
        float: Milliseconds.

    Raises:
        ArchOutsideSpaceError: Naming the block of ``arch`` outside the
            table's space.
        LatencyTableError: If the table lacks one of its blocks, or the V1
            blocks of a V1 name.
    """
    parts = latency_parts(arch, table)
    if corrected and table.correction:
        scales = table.correction['scales']
        return float(table.correction['overhead'] +
                     sum(scales[name] * parts[name] for name in PARTS))
    return float(sum(parts.values()))


def fit_correction(table: LatencyTable, archs: Sequence[Union[str, dict]],
                   measured: Sequence[float]) -> dict:
    """Fit ``measured ~ overhead + sum_i scale_i * part_i`` by least squares.

    For runtimes whose whole-network graph runs faster (or slower) than its
    blocks one by one: fusion across blocks, a per-call overhead paid once
    instead of once per block. Store the result in ``table.correction``.

    Args:
        table (LatencyTable): The table (its correction is not used).
        archs (Sequence[str | dict]): Networks measured whole (names or
            arch dicts as :func:`predict_latency` takes them), at least
            ``len(PARTS) + 2`` of them.
        measured (Sequence[float]): Their milliseconds.

    Returns:
        dict: ``overhead`` (ms), ``scales`` (per part) and ``fitted_on``
        (the number of networks).

    Raises:
        ValueError: If a fitted scale is not positive, which no runtime can
            cause but noise can.
    """
    if len(archs) != len(measured) or len(archs) < len(PARTS) + 2:
        raise ValueError(f'a correction needs at least {len(PARTS) + 2} '
                         'measured networks, one time each')
    rows: List[List[float]] = []
    for arch in archs:
        parts = latency_parts(arch, table)
        rows.append([1.] + [parts[name] for name in PARTS])
    coefs, *_ = np.linalg.lstsq(
        np.array(rows), np.array(measured, dtype=float), rcond=None)
    if not (coefs[1:] > 0).all():
        raise ValueError(
            'the fitted correction has a scale <= 0 (a stage that makes '
            f'networks faster: {np.round(coefs[1:], 3).tolist()}): the '
            'measurements are too noisy to fit; measure on an idle machine '
            'or more networks')
    return dict(
        overhead=float(coefs[0]),
        scales={
            name: float(c)
            for name, c in zip(PARTS, coefs[1:])
        },
        fitted_on=len(archs))
