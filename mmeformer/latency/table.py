"""A latency table: the measured milliseconds of every block configuration
of a search space (and, optionally, of the published V1 networks), for one
device, runtime, precision and input size."""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmeformer.models.backbones import EfficientFormerV2Space
from mmeformer.utils import atomic_write_bytes
from .blocks import Block, parse_key, space_blocks, v1_blocks

__all__ = ['LatencyTable', 'LatencyTableError', 'TABLE_FORMAT', 'BUILD_HINT']

#: The ``format`` field of a table file.
TABLE_FORMAT = 'mmeformer latency table'
#: The version written. Version 1 tables (before the V1 blocks) are read as
#: tables without them; rebuilding one with the V1 blocks resumes it.
_VERSION = 2
_READABLE = (1, 2)

#: How to make a table, for messages.
BUILD_HINT = 'python tools/analysis_tools/latency_table.py build'

#: Meta fields that ``expect`` can name.
_EXPECTABLE = ('runtime', 'precision', 'input_size', 'space_fingerprint',
               'device', 'threads', 'with_head')


class LatencyTableError(ValueError):
    """A table file that cannot be used as asked; the message says why."""


class LatencyTable:
    """Block latencies of one search space, plus what they were measured on.

    Args:
        meta (dict): What the entries were measured on: ``runtime``,
            ``precision``, ``input_size`` ``[H, W]``, ``with_head``,
            ``device`` (the CPU model), ``threads``, ``versions``,
            ``repeats``, ``warmup``, ``space`` (:meth:`EfficientFormerV2Space.
            to_dict`), ``space_fingerprint`` and ``with_v1`` (whether it
            holds the blocks of the published V1 networks, False if
            absent).
        entries (dict[str, float], optional): Milliseconds per
            :attr:`Block.key`. Defaults to none.
        correction (dict, optional): A fitted correction of the sums, see
            :func:`~mmeformer.latency.fit_correction`. Defaults to None.
    """

    def __init__(self,
                 meta: dict,
                 entries: Optional[Dict[str, float]] = None,
                 correction: Optional[dict] = None) -> None:
        self.meta = dict(meta)
        self.meta.setdefault('with_v1', False)
        self.entries = dict(entries or {})
        self.correction = correction

    @property
    def space(self) -> EfficientFormerV2Space:
        """The search space the table covers."""
        return EfficientFormerV2Space.from_dict(self.meta['space'])

    @property
    def with_head(self) -> bool:
        """Whether the table holds the classifier heads."""
        return bool(self.meta['with_head'])

    @property
    def with_v1(self) -> bool:
        """Whether the table holds the blocks of the published V1 networks
        (:func:`~.blocks.v1_blocks`)."""
        return bool(self.meta['with_v1'])

    def blocks(self) -> List[Block]:
        """Every block the table must hold: the space's, then the V1
        networks' if :attr:`with_v1`."""
        blocks = space_blocks(self.space, self.with_head)
        if self.with_v1:
            blocks += v1_blocks(self.with_head)
        return blocks

    def missing(self) -> List[Block]:
        """The blocks not measured yet."""
        return [b for b in self.blocks() if b.key not in self.entries]

    @property
    def complete(self) -> bool:
        """Whether every block of the space is measured."""
        return not self.missing()

    def describe(self) -> str:
        """One line: runtime, precision, size, device, threads."""
        height, width = self.meta['input_size']
        return (f"{self.meta['runtime']} {self.meta['precision']} at "
                f"{height}x{width}, {self.meta['threads']} threads, on "
                f"{self.meta['device']}")

    # -- files -------------------------------------------------------------

    def to_dict(self) -> dict:
        """The file's content."""
        return dict(
            format=TABLE_FORMAT,
            version=_VERSION,
            meta=self.meta,
            entries=self.entries,
            correction=self.correction)

    def save(self, path: str) -> None:
        """Write the table to ``path`` atomically (old or new, never half).

        Args:
            path (str): A ``.json`` file; its folder must exist.
        """
        folder = osp.dirname(osp.abspath(path))
        if not osp.isdir(folder):
            raise LatencyTableError(
                f'cannot write {path}: the folder {folder} does not exist; '
                'create it first (mkdir -p)')
        data = json.dumps(self.to_dict(), indent=1, sort_keys=True)
        atomic_write_bytes(path, (data + '\n').encode())

    @classmethod
    def load(cls,
             path: str,
             expect: Optional[dict] = None,
             allow_incomplete: bool = False) -> 'LatencyTable':
        """Read a table and check it is the one asked for.

        Args:
            path (str): The file.
            expect (dict, optional): Meta values the table must have, any
                of ``runtime``, ``precision``, ``input_size`` (``(H, W)``),
                ``space_fingerprint``, ``device``, ``threads``,
                ``with_head``. Defaults to None (no check).
            allow_incomplete (bool): Accept a table whose build was
                interrupted. Defaults to False.

        Returns:
            LatencyTable: The table.

        Raises:
            LatencyTableError: If the file is missing, truncated, not a
                latency table, incomplete, or made for other values than
                ``expect`` names.
        """
        if not osp.isfile(path):
            raise LatencyTableError(
                f'latency table {path} does not exist; make it with '
                f'{BUILD_HINT}')
        try:
            with open(path, encoding='utf-8') as f:
                data = json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise LatencyTableError(
                f'{path} is not a latency table: not valid JSON, perhaps '
                f'truncated ({error}); rebuild it with {BUILD_HINT}') from None
        table = cls._from_data(data, path)
        if expect:
            table.check(expect, path)
        if not allow_incomplete and not table.complete:
            missing = table.missing()
            raise LatencyTableError(
                f'{path} is incomplete: it holds {len(table.entries)} of '
                f'{len(table.blocks())} blocks (first missing: '
                f'{missing[0].key}); rerun its build command, which resumes')
        return table

    @classmethod
    def _from_data(cls, data: object, path: str) -> 'LatencyTable':
        if not isinstance(data, dict) or data.get('format') != TABLE_FORMAT:
            raise LatencyTableError(
                f'{path} is not a latency table (no "format": '
                f'"{TABLE_FORMAT}" field); make one with {BUILD_HINT}')
        if data.get('version') not in _READABLE:
            raise LatencyTableError(
                f"{path} is a version {data.get('version')} latency table; "
                f'this mmeformer reads versions '
                f"{', '.join(map(str, _READABLE))}: rebuild it with "
                f'{BUILD_HINT}, or use the mmeformer that made it')
        meta, entries = data.get('meta'), data.get('entries')
        needed = set(_EXPECTABLE) | {'space'}
        if not isinstance(meta, dict) or not needed <= set(meta):
            raise LatencyTableError(
                f'{path} is a damaged latency table: its "meta" lacks '
                f'{sorted(needed - set(meta or {}))}; rebuild it')
        if not isinstance(entries, dict) or not all(
                isinstance(v, (int, float)) and v >= 0
                for v in entries.values()):
            raise LatencyTableError(
                f'{path} is a damaged latency table: "entries" must map '
                'block keys to milliseconds; rebuild it')
        try:
            space = EfficientFormerV2Space.from_dict(meta['space'])
            for key in entries:
                parse_key(key)
        except (TypeError, ValueError) as error:
            raise LatencyTableError(
                f'{path} is a damaged latency table ({error}); rebuild '
                'it') from None
        if not isinstance(meta.get('with_v1', False), bool):
            raise LatencyTableError(
                f'{path} is a damaged latency table: its "with_v1" must be '
                'true or false; rebuild it')
        if space.fingerprint() != meta['space_fingerprint']:
            raise LatencyTableError(
                f'{path} is a damaged latency table: its space does not '
                'match its space_fingerprint; rebuild it')
        return cls(meta, entries, data.get('correction'))

    def check(self, expect: dict, path: str = 'the latency table') -> None:
        """Refuse a table made for other values than ``expect``.

        Raises:
            LatencyTableError: Naming the first value that differs.
            TypeError: If ``expect`` names a field that cannot be checked.
        """
        unknown = sorted(set(expect) - set(_EXPECTABLE))
        if unknown:
            raise TypeError(f'expect takes {list(_EXPECTABLE)}, not '
                            f'{unknown}')
        for name, wanted in expect.items():
            have = self.meta[name]
            if name == 'input_size':
                wanted = _size(wanted)
                have = _size(have)
            if have != wanted:
                raise LatencyTableError(
                    f'{path} was measured for {name} {_show(have)}, not '
                    f'{_show(wanted)} ({self.describe()}); tables are never '
                    f'mixed: build one for {_show(wanted)} with {BUILD_HINT}')


def _size(size: Sequence[int]) -> List[int]:
    if isinstance(size, int):
        return [size, size]
    return [int(s) for s in size]


def _show(value: object) -> str:
    if isinstance(value, list) and len(value) == 2 and all(
            isinstance(v, int) for v in value):
        return f'{value[0]}x{value[1]}'
    return repr(value) if isinstance(value, str) else str(value)
