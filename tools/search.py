"""Search the EfficientFormerV2 supernet of a config for the most accurate
subnet within a latency and a size budget on this device."""
import argparse

import mmeformer  # noqa: F401  (registers the `mmeformer::` config prefix)
from mmeformer.runtime import (add_config_arguments, add_launcher_arguments,
                               exit_on_setup_error, load_config,
                               parse_tool_args)
from mmeformer.runtime.errors import ConfigError
from mmeformer.utils import quiet_host_warnings

EPILOG = """\
The fine-grained joint search of EfficientFormerV2 (arXiv 2212.08059,
Section 4): from the largest subnet, every step scores each action (one
stage's width one step down, one stage's last block dropped, one block's MLP
ratio one step down, one attention block dropped) on a fixed subset of the
config's held-out data (search_dataloader, else val_dataloader) after
recalibrating BatchNorm on training batches, and takes the action with the
smallest accuracy drop per gain in Mobile Efficiency Score (latency from the
table, parameters of the plain classifier), until both budgets hold. The
latency budget is met when measured: an arch whose prediction meets it is
timed whole as the table was, and the search goes on while it is slower
(--predicted-only skips this; a table of another device, --device, is
searched on its predictions).

Refused before any work: a table of another device, runtime, precision,
input size (search.input_size of the config) or space, a checkpoint of
another space, a budget that even the smallest subnet misses (its latency
and size are named). A killed search continues from its last finished step
when run again with the same arguments (WORK_DIR/search_state.json).

Writes into WORK_DIR: found.py and found.pth (the found arch as a plain
EfficientFormerV2 classifier, for tools/train.py fine-tuning, tools/test.py
and tools/deployment/pytorch2onnx.py), search_path.csv / .md (each step's
action, top-1, predicted latency, parameters, MES; measured latency of the
found arch) and search_path.png (top-1 against latency).

--strategy evolution instead scores generations of archs drawn within the
budgets (the first uniformly, the next ones mutations and crossovers of the
most accurate so far) the same way, and finds the most accurate of all.

Distributed (tools/dist_search.sh, tools/slurm_search.sh): rank r of n
scores the candidates r::n of each step; every rank recalibrates and scores
on the same seeded batches (search.seed), so n processes find what one
finds. Rank 0 writes the outputs.

--extract writes given archs of the space (published ones such as s0, or
JSON arch dicts) as found.py / found.pth are, each with its own BatchNorm
statistics, and reports their top-1 on the scoring subset, predicted and
measured latency: the published networks of the same supernet, to fine-tune
and compare with the found arch.

examples:
  python tools/search.py configs/search/eformerv2_supernet_shapes.py \\
      work_dirs/supernet/iter_200.pth \\
      --latency-table work_dirs/latency/torch_fp32_96x96.json \\
      --max-latency 17.9 --work-dir work_dirs/search
  python tools/search.py configs/search/eformerv2_supernet_shapes.py \\
      work_dirs/supernet/iter_200.pth \\
      --latency-table work_dirs/latency/torch_fp32_96x96.json \\
      --extract s0 s1 --work-dir work_dirs/published
  bash tools/dist_search.sh configs/search/eformerv2_supernet_in1k.py \\
      SUPERNET.pth 8 --latency-table TABLE --max-latency 2.0 --max-params 5
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Search an EfficientFormerV2 supernet for the best '
        'subnet within a latency and a size budget.',
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(
        parser,
        checkpoint='positional',
        checkpoint_help='the trained supernet (tools/train.py CONFIG)',
        cfg_options_example='search.scoring_batches=4')
    parser.add_argument(
        '--latency-table',
        required=True,
        help='latency table of this device at search.input_size '
        '(tools/analysis_tools/latency_table.py build --space ...)')
    parser.add_argument(
        '--max-latency', type=float, help='latency budget in ms')
    parser.add_argument(
        '--max-params',
        type=float,
        help='size budget in millions of parameters (whole classifier)')
    parser.add_argument('--runtime', help='refuse a table of another runtime')
    parser.add_argument(
        '--precision', help='refuse a table of another precision')
    parser.add_argument(
        '--device',
        help='the device the table must be of, as the table names it '
        '(default: this machine\'s CPU); a table of another device is '
        'searched on its predictions, which cannot be measured here')
    parser.add_argument(
        '--predicted-only',
        action='store_true',
        help='stop when the predicted latency meets --max-latency (by '
        'default the greedy search measures an arch whose prediction meets '
        'it and goes on while the whole network is slower)')
    parser.add_argument(
        '--work-dir', default='work_dirs/search', help='output folder')
    parser.add_argument(
        '--latency-alpha',
        type=float,
        default=0.5,
        help='weight of latency in the MES (default: 0.5)')
    parser.add_argument(
        '--params-alpha',
        type=float,
        default=0.5,
        help='weight of size in the MES (default: 0.5)')
    parser.add_argument(
        '--max-steps',
        type=int,
        help='stop after this many steps (continue later with the same '
        'arguments)')
    parser.add_argument(
        '--strategy',
        choices=['greedy', 'evolution'],
        default='greedy',
        help='greedy: the paper\'s fine-grained joint search (default); '
        'evolution: an evolutionary search over the same space within the '
        'budgets (settings: search.evolution of the config), resumable '
        'per generation (--max-steps counts generations)')
    parser.add_argument(
        '--compare-bn',
        type=int,
        metavar='N',
        help='instead of searching: top-1 of the largest, the smallest and '
        'N random subnets with the supernet\'s shared BatchNorm statistics '
        'and with recalibrated ones')
    parser.add_argument(
        '--extract',
        nargs='+',
        metavar='ARCH',
        help='instead of searching: write each arch (a published name s0 s1 '
        's2 l, largest, smallest, or an arch dict in JSON) with its own '
        'BatchNorm statistics as WORK_DIR/NAME.py and NAME.pth for '
        'fine-tuning, and report its top-1 on the scoring subset, '
        'predicted and measured latency and parameters')
    add_launcher_arguments(parser, 'search')
    args = parse_tool_args(parser, argv)
    if (args.compare_bn is None and args.extract is None
            and args.max_latency is None and args.max_params is None):
        parser.error('give --max-latency, --max-params or both')
    if args.compare_bn is not None and args.extract is not None:
        parser.error('give --compare-bn or --extract, not both')
    return parser, args


def named_archs(texts, space):
    """``--extract`` arguments as arch dicts by file stem: published names
    and largest / smallest keep their name, JSON archs are subnet0, ..."""
    import json

    from mmeformer.models.backbones import EfficientFormerV2
    named = dict(largest=space.largest, smallest=space.smallest)
    archs = {}
    for index, text in enumerate(texts):
        key = text.lower()
        if key in named:
            archs[key] = named[key]()
        elif key in EfficientFormerV2.arch_zoo:
            archs[key] = space.published(key)
        else:
            try:
                archs[f'subnet{index}'] = json.loads(text)
            except json.JSONDecodeError:
                raise ConfigError(
                    f'--extract {text!r}: neither a published name ('
                    f'{" ".join(EfficientFormerV2.arch_zoo)}), largest, '
                    'smallest, nor an arch dict in JSON') from None
    return archs


def start_process_group(cfg):
    """Join the processes of a distributed search, as tools/train.py does.

    Without CUDA, :func:`mmeformer.engine.distributed.setup_distributed`
    starts a gloo group without binding a GPU; with CUDA, mmengine binds
    each process to its GPU and starts the config's backend (nccl).
    """
    import torch.distributed as torch_dist
    from mmengine.dist import init_dist

    from mmeformer.engine.distributed import setup_distributed
    cfg = setup_distributed(cfg)
    if cfg.launcher != 'none' and not torch_dist.is_initialized():
        init_dist(cfg.launcher, **cfg.get('env_cfg', {}).get('dist_cfg', {}))
    return cfg


def main(argv=None):
    quiet_host_warnings()
    parser, args = parse_args(argv)
    with exit_on_setup_error(parser):
        from mmengine.dist import get_rank
        from mmengine.logging import MMLogger

        from mmeformer.runtime import check_launcher_environment
        from mmeformer.search import (BudgetError, MobileEfficiencyScore,
                                      SearchStateError)
        from mmeformer.search.session import SearchSession
        check_launcher_environment(args.launcher, 'search')
        cfg = load_config(args.config, args.cfg_options, args.work_dir,
                          args.launcher)
        cfg = start_process_group(cfg)

        logger = MMLogger.get_instance('mmeformer_search')

        def log(line):
            if get_rank() == 0:
                logger.info(line)

        try:
            session = SearchSession(
                cfg,
                args.checkpoint,
                args.latency_table,
                args.max_latency,
                args.max_params,
                args.work_dir,
                runtime=args.runtime,
                precision=args.precision,
                device=args.device,
                measure_budget=not args.predicted_only,
                mes=MobileEfficiencyScore(
                    latency_alpha=args.latency_alpha,
                    params_alpha=args.params_alpha),
                log=log)
            if args.compare_bn is not None:
                for line in session.compare_bn(args.compare_bn):
                    log(line)
            elif args.extract is not None:
                archs = named_archs(args.extract, session.space)
                for line in session.extract(archs):
                    log(line)
            else:
                session.run(args.max_steps, args.strategy)
        except (BudgetError, SearchStateError) as e:
            raise ConfigError(str(e)) from None


if __name__ == '__main__':
    main()
