"""What the command-line tools share: the config arguments, the launcher
arguments and one way to report a run refused before it starts.

A tool built on them reads::

    parser = argparse.ArgumentParser(description='...')
    add_config_arguments(parser, checkpoint='positional')
    args = parse_tool_args(parser, argv)
    with exit_on_setup_error(parser):
        cfg = load_config(args.config, args.cfg_options)
        ...
"""
import argparse
import os
import sys
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

from ..utils import CfgOptionsAction
from .errors import SetupError

__all__ = [
    'add_config_arguments', 'add_launcher_arguments', 'parse_tool_args',
    'exit_on_setup_error'
]

CHECKPOINT_ARGUMENTS = ('none', 'positional', 'option')


def add_config_arguments(
        parser: argparse.ArgumentParser,
        checkpoint: str = 'none',
        checkpoint_help: str = 'checkpoint file',
        cfg_options_example: str = 'train_cfg.max_epochs=1') -> None:
    """Add ``config``, a checkpoint if the tool takes one, and
    ``--cfg-options`` to ``parser``.

    ``--cfg-options`` is read by :class:`~mmeformer.utils.CfgOptionsAction`:
    an item without ``=`` is a usage error, not a traceback. Pass
    ``args.cfg_options`` to :func:`~mmeformer.runtime.load_config`.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        checkpoint (str): ``'none'``; ``'positional'`` for a required
            ``checkpoint`` after ``config``; ``'option'`` for an optional
            ``--checkpoint``. Defaults to 'none'.
        checkpoint_help (str): The checkpoint's help text. Defaults to
            'checkpoint file'.
        cfg_options_example (str): Overrides shown in the help of
            ``--cfg-options``. Defaults to 'train_cfg.max_epochs=1'.

    Examples:
        >>> import argparse
        >>> parser = argparse.ArgumentParser(prog='get_flops.py')
        >>> add_config_arguments(
        ...     parser, cfg_options_example='model.backbone.arch=l3')
        >>> args = parser.parse_args(
        ...     ['cfg.py', '--cfg-options', 'model.backbone.arch=l3'])
        >>> args.config, args.cfg_options
        ('cfg.py', {'model.backbone.arch': 'l3'})
    """
    if checkpoint not in CHECKPOINT_ARGUMENTS:
        raise ValueError(f'checkpoint is {checkpoint!r}; expected one of '
                         f'{", ".join(CHECKPOINT_ARGUMENTS)}')
    parser.add_argument('config', help='config file path')
    if checkpoint == 'positional':
        parser.add_argument('checkpoint', help=checkpoint_help)
    elif checkpoint == 'option':
        parser.add_argument('--checkpoint', help=checkpoint_help)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
        metavar='KEY=VALUE',
        help=f'override config settings, e.g. {cfg_options_example}; '
        'lists as key="[a,b]", no spaces')


def add_launcher_arguments(parser: argparse.ArgumentParser,
                           script: str) -> None:
    """Add ``--launcher`` and the ``--local-rank`` that launchers pass.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        script (str): The tool's name in its launch scripts, e.g. 'train'
            for ``tools/dist_train.sh`` and ``tools/slurm_train.sh``.
    """
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm'],
        default='none',
        help='how the processes were started: none (one process), pytorch '
        f'(torchrun, see tools/dist_{script}.sh) or slurm (srun, see '
        f'tools/slurm_{script}.sh); gloo on CPU machines, nccl on GPUs')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument(
        '--local_rank',
        '--local-rank',
        type=int,
        default=0,
        help=argparse.SUPPRESS)


def parse_tool_args(
        parser: argparse.ArgumentParser,
        argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse ``argv`` (the command line if None).

    With :func:`add_launcher_arguments`, ``--local-rank`` becomes the
    ``LOCAL_RANK`` that mmengine reads, unless the launcher set it.

    Returns:
        argparse.Namespace: The arguments.
    """
    args = parser.parse_args(argv)
    if 'local_rank' in args:
        os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


@contextmanager
def exit_on_setup_error(parser: argparse.ArgumentParser) -> Iterator[None]:
    """Turn a :class:`~mmeformer.runtime.SetupError` raised inside into
    ``<prog>: error: <message>`` on stderr and exit status 1.

    The message is about the user's files and options, so no traceback is
    shown; other exceptions pass through.

    Examples:
        >>> import argparse
        >>> from mmeformer.runtime import load_config
        >>> parser = argparse.ArgumentParser(prog='test.py')
        >>> with exit_on_setup_error(parser):  # doctest: +SKIP
        ...     load_config('missing.py')
        test.py: error: missing.py: no such config file. ...
    """
    try:
        yield
    except SetupError as e:
        sys.exit(f'{parser.prog}: error: {e}')
