"""What ``tools/search.py`` runs: check every input, then search, extract
and report."""
import contextlib
import json
import os
import os.path as osp
import random
from typing import Callable, Dict, Iterator, List, Optional

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.dist import get_dist_info
from mmengine.registry import DefaultScope

from mmeformer.models.backbones import EfficientFormerV2Space
from mmeformer.models.backbones.efficientformer_v2_space import \
    ArchOutsideSpaceError
from mmeformer.utils import (CheckpointError, ConfigError,
                             UnreadableCheckpointError, read_checkpoint)
from .evolution import EvolutionSearch
from .extract import subnet_model_config, write_subnet
from .greedy import GreedySearch, Measure
from .mes import MobileEfficiencyScore
from .report import path_rows, plot_path, write_path_csv, write_path_markdown
from .scoring import SubnetScorer

__all__ = ['SearchSession']

FINGERPRINT_KEY = 'backbone.space_fingerprint'
#: The search strategies, with the title of their plot.
STRATEGIES = {
    'greedy': 'Fine-grained joint search',
    'evolution': 'Evolutionary search'
}


def _build(model_cfg: dict, meta: bool = False) -> nn.Module:
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        if meta:
            with torch.device('meta'):
                return MODELS.build(model_cfg)
        return MODELS.build(model_cfg)


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed the streams that data pipelines draw from (Python's, NumPy's
    and torch's CPU one) inside the block; restore them afterwards."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def _fixed_batches(loader_cfg: dict, num_batches: int,
                   seed: int) -> List[dict]:
    """``num_batches`` batches of a fixed random subset of a dataloader
    config's dataset, the same in every process and every run.

    The subset and the random transforms of the pipeline (crops and flips
    of a training pipeline) both follow ``seed``.
    """
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import FUNCTIONS
    from mmpretrain.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataset = DATASETS.build(loader_cfg['dataset'])
        collate_cfg = loader_cfg.get('collate_fn')
        collate = pseudo_collate if collate_cfg is None else FUNCTIONS.get(
            collate_cfg['type'])
    size = loader_cfg['batch_size']
    order = torch.randperm(
        len(dataset), generator=torch.Generator().manual_seed(seed))
    if len(dataset) < size:
        raise ConfigError(f'the search data set has {len(dataset)} images, '
                          f'fewer than one batch ({size})')
    num_batches = min(num_batches, len(dataset) // size)
    with _seeded(seed):
        return [
            collate([dataset[int(i)] for i in order[k * size:(k + 1) * size]])
            for k in range(num_batches)
        ]


class SearchSession:
    """One search: the config's supernet classifier with its checkpoint, a
    latency table, budgets and a work dir.

    Everything that can be refused is checked in the constructor and
    :meth:`check_budget`, before data are read or anything is written: the
    config's model, the checkpoint's space, the table's device, space and
    input size, the budgets.

    Args:
        cfg (Config): The supernet config: ``model.backbone`` an
            ``EfficientFormerV2Supernet``, ``search.input_size`` the size
            of the latency table; BatchNorm is recalibrated on batches of
            ``calibration_dataloader`` (else ``train_dataloader``),
            subnets are scored on ``search_dataloader`` (else
            ``val_dataloader``).
        checkpoint (str): The trained supernet.
        table (str): The latency table file.
        max_latency (float, optional): Budget in ms.
        max_params (float, optional): Budget in millions of parameters.
        work_dir (str): Output folder.
        runtime (str, optional): The runtime the table must be of.
        precision (str, optional): The precision it must be of.
        mes (MobileEfficiencyScore): The score.
        log (callable): Logs a line.
        device (str, optional): The device the table must be of (its CPU
            name as the table records it); None: this machine's. The
            latencies of a table of another device cannot be measured
            here, so the search then trusts the prediction.
        measure_budget (bool): Make the greedy search meet the latency
            budget when measured, not only predicted (a table of this
            machine). Defaults to True.
    """

    def __init__(self,
                 cfg: Config,
                 checkpoint: str,
                 table: str,
                 max_latency: Optional[float],
                 max_params: Optional[float],
                 work_dir: str,
                 runtime: Optional[str] = None,
                 precision: Optional[str] = None,
                 mes: Optional[MobileEfficiencyScore] = None,
                 log: Callable[[str], None] = print,
                 device: Optional[str] = None,
                 measure_budget: bool = True) -> None:
        from mmeformer.latency import (LatencyTable, LatencyTableError,
                                       device_name)
        self.cfg = cfg
        self.log = log
        self.work_dir = work_dir
        self.checkpoint = checkpoint
        self.max_latency, self.max_params = max_latency, max_params
        self.mes = mes or MobileEfficiencyScore()
        self._params = {}
        backbone = cfg.model.get('backbone', {})
        if 'EfficientFormerV2Supernet' not in str(backbone.get('type')):
            raise ConfigError(
                f'{cfg.filename}: model.backbone must be an '
                'mmeformer.EfficientFormerV2Supernet to search, got '
                f"{backbone.get('type')!r}")
        space = backbone.get('space')
        self.space = (
            EfficientFormerV2Space.default()
            if space is None else EfficientFormerV2Space.from_dict(space))
        search_cfg = cfg.get('search', {})
        if 'input_size' not in search_cfg:
            raise ConfigError(
                f'{cfg.filename}: set search.input_size, the input size the '
                'latency table must be measured at (e.g. search = '
                'dict(input_size=112))')
        self.search_cfg = search_cfg
        expect = dict(
            space_fingerprint=self.space.fingerprint(),
            input_size=search_cfg['input_size'],
            device=device or device_name())
        #: Whether the table's latencies can be measured on this machine.
        self.measurable = expect['device'] == device_name()
        self.measure_budget = measure_budget and self.measurable
        if runtime:
            expect['runtime'] = runtime
        if precision:
            expect['precision'] = precision
        try:
            self.table = LatencyTable.load(table, expect=expect)
        except LatencyTableError as e:
            raise ConfigError(f'--latency-table: {e}') from None
        self._check_checkpoint()

    def _check_checkpoint(self) -> None:
        if not osp.isfile(self.checkpoint):
            raise CheckpointError(f'{self.checkpoint} does not exist; train '
                                  'the supernet first with tools/train.py '
                                  f'{self.cfg.filename}')
        try:
            ckpt = read_checkpoint(self.checkpoint)
        except UnreadableCheckpointError as e:
            raise CheckpointError(str(e)) from None
        state_dict = ckpt.get('state_dict', ckpt)
        found = state_dict.get(FINGERPRINT_KEY)
        if found is None:
            raise CheckpointError(
                f'{self.checkpoint} is not a supernet classifier checkpoint '
                f'(no {FINGERPRINT_KEY}); pass the checkpoint that '
                f'tools/train.py {self.cfg.filename} wrote')
        found = bytes(found.tolist()).decode(errors='replace')
        if found != self.space.fingerprint():
            raise CheckpointError(
                f'{self.checkpoint} holds a supernet of another search space '
                f'(fingerprint {found}, the config\'s '
                f'{self.space.fingerprint()}); search with the config it '
                'was trained with')
        self.state_dict = state_dict

    # -- the three measures ------------------------------------------------

    def latency(self, arch: dict) -> float:
        """Predicted ms from the table."""
        from mmeformer.latency import predict_latency
        return predict_latency(arch, self.table)

    def measured_latency(self, arch: dict) -> float:
        """Ms of the whole network, measured as the table was, on rank 0
        and sent to every process (which all take the same decision)."""
        from mmengine.dist import broadcast_object_list

        from mmeformer.latency import measure_networks
        rank, _ = get_dist_info()
        value = [measure_networks([arch], self.table)[0] if rank == 0 else 0.]
        broadcast_object_list(value, src=0)
        return float(value[0])

    def params(self, arch: dict) -> float:
        """Millions of parameters of the plain classifier of ``arch``."""
        key = json.dumps(arch, sort_keys=True)
        if key not in self._params:
            model = _build(
                subnet_model_config(self.cfg.model, arch), meta=True)
            self._params[key] = sum(p.numel()
                                    for p in model.parameters()) / 1e6
        return self._params[key]

    def check_budget(self) -> None:
        """Refuse a budget no subnet meets (before any data are read)."""
        from .greedy import check_budget
        check_budget(self.space, self.latency, self.params, self.max_latency,
                     self.max_params)

    # -- the search --------------------------------------------------------

    def build_scorer(self) -> SubnetScorer:
        """Build the model, load the checkpoint, read the fixed batches."""
        model = _build(self.cfg.model)
        model.load_state_dict(self.state_dict, strict=True)
        if torch.cuda.is_available():
            model = model.cuda()
        model.eval()
        prepare = self.search_cfg.get('calibration_batches', 4)
        score = self.search_cfg.get('scoring_batches', 8)
        seed = self.search_cfg.get('seed', 0)
        loader = self.cfg.get('search_dataloader', self.cfg.val_dataloader)

        def batches(loader_cfg, num):
            out = []
            for data in _fixed_batches(loader_cfg, num, seed):
                data = model.data_preprocessor(data, False)
                labels = torch.cat([s.gt_label for s in data['data_samples']])
                out.append((data['inputs'], labels.to(data['inputs'].device)))
            return out

        calibration = self.cfg.get('calibration_dataloader',
                                   self.cfg.train_dataloader)
        return SubnetScorer(model, batches(calibration, prepare),
                            batches(loader, score))

    def compare_bn(self, num_random: int, seed: int = 0) -> List[str]:
        """Top-1 of the largest, the smallest and ``num_random`` random
        subnets with the supernet's shared BatchNorm statistics and with
        recalibrated ones, as Markdown table lines.

        The shared statistics are read before any recalibration: every
        subnet is scored with them first, from a freshly loaded model.
        """
        import random
        rng = random.Random(seed)
        archs = [self.space.largest(), self.space.smallest()]
        archs += [self.space.sample(rng) for _ in range(num_random)]
        scorer = self.build_scorer()
        shared = [scorer.score(arch, recalibrate=False) for arch in archs]
        own = [scorer.score(arch) for arch in archs]
        names = ['largest', 'smallest'
                 ] + [f'random {i}' for i in range(num_random)]
        lines = [
            '| subnet | predicted ms | top-1 shared BN | top-1 '
            'recalibrated BN |', '|---|---|---|---|'
        ]
        for name, arch, a, b in zip(names, archs, shared, own):
            lines.append(f'| {name} | {self.latency(arch):.3f} | {a:.2f} | '
                         f'{b:.2f} |')
        return lines

    def check_archs(self, archs: Dict[str, dict]) -> Dict[str, dict]:
        """Refuse an arch outside the space, naming it and its first stage or
        block the space does not hold; return the normalised archs."""
        checked = {}
        for name, arch in archs.items():
            try:
                checked[name] = self.space.check(arch)
            except ArchOutsideSpaceError as e:
                raise ConfigError(f'{name}: {e}') from None
        return checked

    def extract(self, archs: Dict[str, dict]) -> List[str]:
        """Write archs of the space as plain classifiers, score and time them.

        Each arch gets its own BatchNorm statistics (recalibrated on the
        search's calibration batches, as a search candidate), is scored on
        the search's scoring subset and written as ``WORK_DIR/<name>.py``
        and ``<name>.pth`` (rank 0), ready for ``tools/train.py``
        fine-tuning as the found arch is; its latency is predicted from the
        table and measured whole as the table was.

        Args:
            archs (dict[str, dict]): Arch dicts by file stem.

        Returns:
            list[str]: Markdown table lines: name, top-1, predicted and
            measured ms, parameters and the config file.
        """
        from mmeformer.latency import measure_networks
        archs = self.check_archs(archs)
        rank, _ = get_dist_info()
        scorer = self.build_scorer()
        os.makedirs(self.work_dir, exist_ok=True)
        # Timed on rank 0 alone: processes timing at once slow each other.
        measured = (
            measure_networks(list(archs.values()), self.table)
            if self.measurable and rank == 0 else [None] * len(archs))
        lines = [
            '| subnet | top-1 (scoring subset) | predicted ms | measured ms '
            '| params M | config |', '|---|---|---|---|---|---|'
        ]
        for (name, arch), ms in zip(archs.items(), measured):
            top1 = scorer.score(arch)
            config = osp.join(self.work_dir, f'{name}.py')
            if rank == 0:
                target = _build(
                    subnet_model_config(self.cfg.model, arch), meta=True)
                config, _ = write_subnet(
                    self.cfg,
                    scorer.model,
                    arch,
                    self.work_dir,
                    target,
                    name=name)
            timed = '-' if ms is None else f'{ms:.3f}'
            lines.append(f'| {name} | {top1:.2f} | {self.latency(arch):.3f} '
                         f'| {timed} | {self.params(arch):.3f} | {config} |')
        return lines

    def run(self,
            max_steps: Optional[int] = None,
            strategy: str = 'greedy') -> List[Measure]:
        """Search, then write the outputs (rank 0).

        Args:
            max_steps (int, optional): Stop after this many steps (greedy)
                or generations (evolution); run again to continue.
            strategy (str): ``'greedy'`` (the paper's search) or
                ``'evolution'`` (:class:`EvolutionSearch`, its settings
                from ``search.evolution`` of the config). Defaults to
                'greedy'.

        Returns:
            list[Measure]: The path, the found arch last.
        """
        if strategy not in STRATEGIES:
            raise ConfigError(f'--strategy {strategy!r}: use one of '
                              f'{", ".join(STRATEGIES)}')
        rank, _ = get_dist_info()
        self.check_budget()
        common = dict(
            state_file=osp.join(self.work_dir, 'search_state.json'),
            mes=self.mes,
            settings=dict(
                config=osp.abspath(self.cfg.filename),
                checkpoint=osp.abspath(self.checkpoint),
                table_meta=self.table.meta,
                search=dict(self.search_cfg)),
            write=rank == 0,
            log=self.log)
        # Settings are checked before any data are read; the scorer comes
        # after.
        args = (self.space, None, self.latency, self.params, self.max_latency,
                self.max_params)
        if strategy == 'greedy':
            searcher = GreedySearch(
                *args,
                **common,
                measured_latency=(self.measured_latency
                                  if self.measure_budget else None))
        else:
            try:
                searcher = EvolutionSearch(
                    *args, **common,
                    **dict(self.search_cfg.get('evolution', {})))
            except (TypeError, ValueError) as e:
                raise ConfigError(
                    f'search.evolution: {e}; it takes generations, '
                    'population, parents, mutation_prob, seed and '
                    'max_tries') from None
        searcher.accuracy = scorer = self.build_scorer()
        os.makedirs(self.work_dir, exist_ok=True)
        path = searcher.run(max_steps)
        if not searcher.done() or rank != 0:
            return path
        self.finish(scorer, path, STRATEGIES[strategy])
        return path

    def finish(self,
               scorer: SubnetScorer,
               path: List[Measure],
               title: str = STRATEGIES['greedy']) -> None:
        """Extract the found arch, measure it, write the report."""
        from mmeformer.latency import measure_networks
        found = path[-1].arch
        scorer.score(found)  # its own BatchNorm statistics
        target = _build(subnet_model_config(self.cfg.model, found), meta=True)
        config, ckpt = write_subnet(
            self.cfg, scorer.model, found, self.work_dir, target, name='found')
        self.log(f'found arch: {config} and {ckpt}')
        last = len(path) - 1
        measured = {
            index: step.measured_ms
            for index, step in enumerate(path) if step.measured_ms is not None
        }
        if self.measurable and last not in measured:
            measured[last] = measure_networks([found], self.table)[0]
        timed = (f'measured {measured[last]:.3f} ms' if last in measured else
                 f'not measured (a table of {self.table.meta["device"]})')
        self.log(f'found arch: predicted {path[-1].latency_ms:.3f} ms, '
                 f'{timed} (budget {self.max_latency} ms), '
                 f'{path[-1].params_m:.3f} M parameters, top-1 '
                 f'{path[-1].accuracy:.2f} % on the scoring subset')
        rows = path_rows(path, measured)
        write_path_csv(rows, osp.join(self.work_dir, 'search_path.csv'))
        write_path_markdown(rows, osp.join(self.work_dir, 'search_path.md'))
        plot_path(
            path,
            osp.join(self.work_dir, 'search_path.png'),
            self.max_latency,
            measured.get(last),
            title=title)
