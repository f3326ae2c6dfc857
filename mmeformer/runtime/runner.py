"""Load a config and build the Runner of its host.

What ``tools/train.py`` and ``tools/test.py`` share: the config with its
command-line overrides, the host's registries, the work dir, the
distributed set-up and the Runner itself.
"""
import os.path as osp
import re
from collections import OrderedDict
from typing import Optional

from mmengine.config import Config
from mmengine.device import get_device
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..engine.distributed import setup_distributed
from ..utils import closest_files, collect_env, missing_file_message
from .errors import ConfigError
from .hosts import Host, get_host

__all__ = ['load_config', 'build_runner', 'ToolRunner']


def _missing_config_message(config: str) -> str:
    """Say that ``config`` does not exist, with the nearest names."""
    folder = osp.dirname(config) or '.'
    message = f'{config}: no such config file.'
    if osp.isdir(folder):
        close = closest_files(osp.join(folder, osp.basename(config)))
        if close:
            message += ' Did you mean ' + ' or '.join(close) + '?'
    else:
        message += f' The folder {folder} does not exist either.'
    return message + (' The configs are in configs/classification, '
                      'configs/detection and configs/segmentation.')


def _syntax_error_message(config: str, error: SyntaxError) -> str:
    """Name the file and line of a syntax error in a config.

    mmengine parses configs from strings, so the error's own file name is
    ``<unknown>``; its message names the file (``config`` or a base).
    """
    match = re.search(r'config file (.+?): ', str(error))
    where = match[1] if match else config
    cause = error.__context__
    detail = cause if isinstance(cause, SyntaxError) else error
    location = f', line {detail.lineno}' if detail.lineno else ''
    text = f'\n    {detail.text.strip()}' if detail.text else ''
    return (f'{where}{location}: {detail.msg} (a Python syntax error in '
            f'the config){text}')


def load_config(config: str,
                cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Read a config and apply the overrides common to both tools.

    Args:
        config (str): Path of the config (``mmeformer::`` and the hosts'
            prefixes work in its ``_base_``).
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        work_dir (str, optional): Overrides ``cfg.work_dir``; without either,
            ``./work_dirs/<config name>``.
        launcher (str): 'none', 'pytorch' or 'slurm'. Defaults to 'none'.

    Returns:
        Config: The config.

    Raises:
        ConfigError: If the config does not exist, is not valid Python or
            names a base config that does not exist.
    """
    if not osp.isfile(config):
        raise ConfigError(_missing_config_message(config))
    try:
        cfg = Config.fromfile(config)
    except SyntaxError as e:
        raise ConfigError(_syntax_error_message(config, e)) from e
    except FileNotFoundError as e:
        raise ConfigError(f'{config}: {missing_file_message(e)}') from e
    except NameError as e:
        raise ConfigError(f'{config}: NameError: {e}') from e
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


def build_runner(cfg: Config, host: Optional[Host] = None) -> Runner:
    """Build the Runner for ``cfg`` in its host.

    Registers the host's modules, prepares distributed runs (gloo on CPU, see
    :mod:`mmeformer.engine.distributed`) and builds ``cfg.runner_type`` if
    the config names one.

    Args:
        cfg (Config): A config from :func:`load_config`, checked and
            adjusted by the caller.
        host (Host, optional): Its host; read from ``default_scope`` if not
            given.

    Returns:
        Runner: The runner, not started.
    """
    host = host or get_host(cfg)
    host.register_modules()
    cfg = setup_distributed(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return ToolRunner.from_cfg(cfg)


class ToolRunner(Runner):
    """mmengine's Runner with an environment report true on every machine.

    mmengine's report lists the whole ``env_cfg``, so a single-process CPU
    run reads "dist_cfg: {'backend': 'nccl'}" and "GPU number: 1", and
    torch's build settings, a line of about 2,000 characters. This report
    keeps mmengine's fields and format, adds the stack's versions (see
    :func:`mmeformer.utils.collect_env`), leaves the torch build settings
    and the unused ``dist_cfg`` of non-distributed runs out, and names the
    device and the number of processes.
    """

    def _log_env(self, env_cfg: dict) -> None:
        runtime_env = OrderedDict(env_cfg)
        if not self.distributed:
            runtime_env.pop('dist_cfg', None)
        runtime_env.update(self._randomness_cfg)
        runtime_env['seed'] = self.seed
        runtime_env['Distributed launcher'] = self.launcher
        runtime_env['Distributed training'] = self.distributed
        runtime_env['Device'] = get_device()
        runtime_env['Processes'] = self.world_size

        def block(items) -> str:
            return ''.join(f'\n    {k}: {v}' for k, v in items)

        dash_line = '-' * 60
        self.logger.info(f'\n{dash_line}\nSystem environment:'
                         f'{block(collect_env().items())}\n\n'
                         f'Runtime environment:{block(runtime_env.items())}'
                         f'\n{dash_line}\n')
        if self.cfg._cfg_dict:
            self.logger.info(f'Config:\n{self.cfg.pretty_text}')
