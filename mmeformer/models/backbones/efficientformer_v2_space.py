"""The search space of EfficientFormerV2 architectures.

One description of which arch dicts a search may choose, shared by the
latency tables (which measure every block the space holds) and the supernet
(which holds the weights of the largest arch). It knows neither of them.
"""
import hashlib
import json
import random
from typing import Dict, List, Optional, Sequence

from .efficientformer_v2 import EfficientFormerV2


class ArchOutsideSpaceError(ValueError):
    """An arch dict that the search space does not hold."""


class EfficientFormerV2Space:
    """Per-stage widths, depths and attention blocks, per-block MLP ratios.

    An arch of the space is an :class:`EfficientFormerV2` arch dict with
    ``num_attn_blocks`` as a pair (stage 2, stage 3): ``depths[i]`` blocks in
    stage ``i``, between ``min_depths[i]`` and ``max_depths[i]``; a width from
    ``widths[i]``; the last ``num_attn_blocks`` blocks of stages 2 and 3 with
    an attention, at most ``max_attn_blocks`` of them and never more than the
    stage's blocks; every block's MLP ratio from ``mlp_ratios``. A block's
    hidden channels are ``int(width * ratio)``, as in the backbone.

    Args:
        widths (Sequence[Sequence[int]]): Width choices of each stage.
        min_depths (Sequence[int]): Fewest blocks of each stage.
        max_depths (Sequence[int]): Most blocks of each stage.
        max_attn_blocks (Sequence[int]): Most attention blocks at the end of
            stages 2 and 3.
        mlp_ratios (Sequence[float]): MLP ratio choices of every block.

    Example:
        >>> space = EfficientFormerV2Space.default()
        >>> space.largest()['channels']
        [40, 80, 192, 384]
        >>> space.check(space.published('s0'))['num_attn_blocks']
        [2, 2]
    """

    num_stages = 4

    def __init__(self, widths: Sequence[Sequence[int]],
                 min_depths: Sequence[int], max_depths: Sequence[int],
                 max_attn_blocks: Sequence[int],
                 mlp_ratios: Sequence[float]) -> None:
        self.widths = [sorted(int(w) for w in stage) for stage in widths]
        self.min_depths = [int(d) for d in min_depths]
        self.max_depths = [int(d) for d in max_depths]
        self.max_attn_blocks = [int(n) for n in max_attn_blocks]
        self.mlp_ratios = sorted(float(r) for r in mlp_ratios)
        lengths = {
            len(self.widths),
            len(self.min_depths),
            len(self.max_depths)
        }
        if lengths != {self.num_stages} or len(self.max_attn_blocks) != 2:
            raise ValueError(
                'A space needs widths, min_depths and max_depths for 4 stages '
                'and max_attn_blocks for stages 2 and 3')
        if not all(self.widths) or not self.mlp_ratios:
            raise ValueError('Every stage needs a width choice and the space '
                             'an MLP ratio choice')
        for lo, hi in zip(self.min_depths, self.max_depths):
            if not 1 <= lo <= hi:
                raise ValueError('Depths must satisfy 1 <= min <= max, got '
                                 f'{self.min_depths} and {self.max_depths}')

    @classmethod
    def default(cls) -> 'EfficientFormerV2Space':
        """The space around the published networks, S0 to L.

        Widths in steps of 8 (stages 0 to 2) and 16 (stage 3) over each
        stage's published range and a step beyond its low end, depths from 1
        (2 in stages 2 and 3) up to V2-L's, attention blocks up to V2-L's,
        MLP ratios 1 to 4. All four published archs lie in it.
        """
        return cls(
            widths=[
                range(24, 41, 8),
                range(40, 81, 8),
                range(88, 193, 8),
                range(160, 385, 16),
            ],
            min_depths=[1, 1, 2, 2],
            max_depths=[5, 5, 15, 10],
            max_attn_blocks=[6, 6],
            mlp_ratios=[1, 2, 3, 4])

    # -- arch dicts --------------------------------------------------------

    @staticmethod
    def published(name: str) -> dict:
        """A published arch (``'s0'`` ... ``'l'``) with a per-stage count."""
        arch = EfficientFormerV2.parse_arch(name)
        counts = EfficientFormerV2.attn_blocks_per_stage(arch)
        return dict(
            depths=list(arch['depths']),
            channels=list(arch['channels']),
            num_attn_blocks=counts[2:],
            mlp_ratios=[[float(r) for r in stage]
                        for stage in arch['mlp_ratios']])

    def largest(self) -> dict:
        """The largest arch: every maximum."""
        return self._uniform(self.max_depths, [w[-1] for w in self.widths],
                             self.max_attn_blocks, self.mlp_ratios[-1])

    def smallest(self) -> dict:
        """The smallest arch: every minimum, no attention."""
        return self._uniform(self.min_depths, [w[0] for w in self.widths],
                             [0, 0], self.mlp_ratios[0])

    def sample(self, rng: Optional[random.Random] = None) -> dict:
        """A uniformly drawn choice for every knob of the space."""
        rng = rng or random.Random()
        depths = [
            rng.randint(lo, hi)
            for lo, hi in zip(self.min_depths, self.max_depths)
        ]
        return dict(
            depths=depths,
            channels=[rng.choice(w) for w in self.widths],
            num_attn_blocks=[
                rng.randint(0, min(n, d))
                for n, d in zip(self.max_attn_blocks, depths[2:])
            ],
            mlp_ratios=[[rng.choice(self.mlp_ratios) for _ in range(d)]
                        for d in depths])

    def _uniform(self, depths: List[int], channels: List[int], attn: List[int],
                 ratio: float) -> dict:
        return dict(
            depths=list(depths),
            channels=list(channels),
            num_attn_blocks=[min(n, d) for n, d in zip(attn, depths[2:])],
            mlp_ratios=[[ratio] * d for d in depths])

    def check(self, arch: dict) -> dict:
        """Check that ``arch`` lies in the space and normalise it.

        Args:
            arch (dict): An :class:`EfficientFormerV2` arch dict
                (``num_attn_blocks`` one count or a pair).

        Returns:
            dict: The arch with ``num_attn_blocks`` as a pair and ratios as
            floats.

        Raises:
            ArchOutsideSpaceError: Naming the first stage or block of
                ``arch`` that the space does not hold.
        """
        try:
            arch = EfficientFormerV2.parse_arch(arch)
        except (TypeError, ValueError) as error:
            raise ArchOutsideSpaceError(str(error)) from None
        counts = EfficientFormerV2.attn_blocks_per_stage(arch)[2:]
        for stage, (depth,
                    width) in enumerate(zip(arch['depths'], arch['channels'])):
            if not self.min_depths[stage] <= depth <= self.max_depths[stage]:
                raise ArchOutsideSpaceError(
                    f'Stage {stage} has {depth} blocks; the space holds '
                    f'{self.min_depths[stage]} to {self.max_depths[stage]}')
            if width not in self.widths[stage]:
                raise ArchOutsideSpaceError(
                    f'Stage {stage} is {width} channels wide; the space holds '
                    f'{self.widths[stage]}')
            for index, ratio in enumerate(arch['mlp_ratios'][stage]):
                if float(ratio) not in self.mlp_ratios:
                    raise ArchOutsideSpaceError(
                        f'Block {index} of stage {stage} has MLP ratio '
                        f'{ratio}; the space holds {self.mlp_ratios}')
        for stage, count in zip((2, 3), counts):
            if count > self.max_attn_blocks[stage - 2]:
                raise ArchOutsideSpaceError(
                    f'Stage {stage} has {count} attention blocks; the space '
                    f'holds at most {self.max_attn_blocks[stage - 2]}')
        return dict(
            depths=list(arch['depths']),
            channels=list(arch['channels']),
            num_attn_blocks=list(counts),
            mlp_ratios=[[float(r) for r in stage]
                        for stage in arch['mlp_ratios']])

    def contains(self, arch: dict) -> bool:
        """Whether :meth:`check` accepts ``arch``."""
        try:
            self.check(arch)
        except ArchOutsideSpaceError:
            return False
        return True

    # -- identity ----------------------------------------------------------

    def to_dict(self) -> Dict[str, list]:
        """The space as plain lists, for JSON files and checkpoints."""
        return dict(
            widths=[list(w) for w in self.widths],
            min_depths=list(self.min_depths),
            max_depths=list(self.max_depths),
            max_attn_blocks=list(self.max_attn_blocks),
            mlp_ratios=list(self.mlp_ratios))

    @classmethod
    def from_dict(cls, data: dict) -> 'EfficientFormerV2Space':
        """The space :meth:`to_dict` described."""
        keys = ('widths', 'min_depths', 'max_depths', 'max_attn_blocks',
                'mlp_ratios')
        missing = [key for key in keys if key not in data]
        if missing:
            raise ValueError(f'A search-space record misses {missing}')
        return cls(**{key: data[key] for key in keys})

    def fingerprint(self) -> str:
        """A short hash that tells two spaces apart."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def __eq__(self, other: object) -> bool:
        return isinstance(other,
                          EfficientFormerV2Space) and (self.to_dict()
                                                       == other.to_dict())

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.to_dict()})'
