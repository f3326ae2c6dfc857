"""The actions of the fine-grained joint search: each makes an arch one step
smaller along one knob of the search space."""
import copy
from dataclasses import dataclass
from typing import List

from mmeformer.models.backbones import EfficientFormerV2Space

__all__ = ['Action', 'candidate_actions']

#: Kinds of action, in the order they are listed.
KINDS = ('width', 'depth', 'mlp', 'attn')


@dataclass(frozen=True)
class Action:
    """One step down one knob.

    Attributes:
        kind (str): ``'width'`` (the stage's next smaller width),
            ``'depth'`` (drop the stage's last block, with its attention if
            it has one), ``'mlp'`` (the block's next smaller MLP ratio) or
            ``'attn'`` (the stage's first attention block loses its
            attention).
        stage (int): The stage.
        block (int): The block, for ``'mlp'``; -1 otherwise.
        before (float): The knob's value before.
        after (float): Its value after.
    """

    kind: str
    stage: int
    block: int = -1
    before: float = 0
    after: float = 0

    def __str__(self) -> str:
        where = f'stage {self.stage}'
        if self.block >= 0:
            where += f' block {self.block}'
        return f'{self.kind} {where}: {self.before:g} -> {self.after:g}'

    def apply(self, arch: dict) -> dict:
        """The arch after this action (a new dict)."""
        arch = copy.deepcopy(arch)
        stage = self.stage
        if self.kind == 'width':
            arch['channels'][stage] = int(self.after)
        elif self.kind == 'mlp':
            arch['mlp_ratios'][stage][self.block] = float(self.after)
        elif self.kind == 'depth':
            arch['depths'][stage] -= 1
            arch['mlp_ratios'][stage].pop()
            if stage >= 2 and arch['num_attn_blocks'][stage - 2] > 0:
                arch['num_attn_blocks'][stage - 2] -= 1
        elif self.kind == 'attn':
            arch['num_attn_blocks'][stage - 2] -= 1
        else:
            raise ValueError(f'Unknown action kind {self.kind!r}; one of '
                             f'{KINDS}')
        return arch


def candidate_actions(space: EfficientFormerV2Space,
                      arch: dict) -> List[Action]:
    """Every action that leads from ``arch`` to an arch of ``space``.

    Args:
        space (EfficientFormerV2Space): The space.
        arch (dict): An arch of it, normalised by ``space.check``.

    Returns:
        list[Action]: Widths, depths, MLP ratios, attention blocks, stage by
        stage.
    """
    actions = []
    ratios = space.mlp_ratios
    for stage in range(space.num_stages):
        widths = space.widths[stage]
        width = arch['channels'][stage]
        if widths.index(width) > 0:
            actions.append(
                Action(
                    'width',
                    stage,
                    before=width,
                    after=widths[widths.index(width) - 1]))
        depth = arch['depths'][stage]
        if depth > space.min_depths[stage]:
            actions.append(
                Action('depth', stage, before=depth, after=depth - 1))
        for block, ratio in enumerate(arch['mlp_ratios'][stage]):
            if ratios.index(ratio) > 0:
                actions.append(
                    Action(
                        'mlp',
                        stage,
                        block,
                        before=ratio,
                        after=ratios[ratios.index(ratio) - 1]))
        if stage >= 2 and arch['num_attn_blocks'][stage - 2] > 0:
            count = arch['num_attn_blocks'][stage - 2]
            actions.append(
                Action('attn', stage, before=count, after=count - 1))
    return actions
