"""The OpenMMLab package ("host") that runs a config.

Our configs live in three hosts: MMPretrain (classification), MMDetection
(instance segmentation) and MMSegmentation (semantic segmentation). A config
names its host through ``default_scope``, as the hosts' own configs do; the
tools read it there rather than guessing from paths or model types, so a
research config inheriting ours runs in the same host.
"""
import importlib
import os.path as osp
from typing import Callable, Dict, NamedTuple

from mmengine.config import Config

from .errors import UnknownHostError, UnsupportedOptionError

__all__ = ['Host', 'HOSTS', 'get_host']


def _show_detection(cfg: Config, show_dir: str) -> None:
    vis = cfg.default_hooks.visualization
    vis.draw = True
    vis.test_out_dir = show_dir


def _show_segmentation(cfg: Config, show_dir: str) -> None:
    vis = cfg.default_hooks.visualization
    vis.draw = True
    # The hook draws every `interval`-th image (50 by default).
    vis.interval = 1
    # SegVisualizationHook leaves saving to the visualizer's backends.
    cfg.visualizer.save_dir = show_dir


def _show_classification(cfg: Config, show_dir: str) -> None:
    vis = cfg.default_hooks.visualization
    vis.enable = True
    vis.interval = 1
    vis.out_dir = show_dir


class Host(NamedTuple):
    """What the tools need to know about one host.

    Attributes:
        scope (str): The ``default_scope`` of its configs.
        package (str): Its import name.
        task (str): What it does, for messages.
        dump_metric (str): A metric that pickles raw predictions.
        enable_show (Callable): ``(cfg, show_dir)`` -> None; make the test
            run draw predictions on the images into ``show_dir``.
    """
    scope: str
    package: str
    task: str
    dump_metric: str
    enable_show: Callable[[Config, str], None]

    def register_modules(self) -> None:
        """Register the host's modules and make it the default scope."""
        utils = importlib.import_module(f'{self.package}.utils')
        utils.register_all_modules(init_default_scope=True)

    def show_images(self, cfg: Config, show_dir: str) -> None:
        """Make the test run of ``cfg`` draw predictions into ``show_dir``.

        The directory is made absolute first: MMDetection's hook joins a
        relative one to the work dir once per image, nesting it.
        """
        if 'visualization' not in cfg.get('default_hooks', {}):
            raise UnsupportedOptionError(
                f'{self.package} draws predictions through '
                'default_hooks.visualization, which the config lacks; add '
                'the host\'s visualization hook to default_hooks')
        self.enable_show(cfg, osp.abspath(show_dir))


HOSTS: Dict[str, Host] = {
    host.scope: host
    for host in (
        Host('mmpretrain', 'mmpretrain', 'classification', 'DumpResults',
             _show_classification),
        Host('mmdet', 'mmdet', 'instance segmentation', 'DumpDetResults',
             _show_detection),
        Host('mmseg', 'mmseg', 'semantic segmentation', 'DumpResults',
             _show_segmentation),
    )
}


def get_host(cfg: Config) -> Host:
    """The host named by ``cfg.default_scope``.

    Raises:
        UnknownHostError: If the scope is missing or not a supported host.
    """
    scope = cfg.get('default_scope')
    if scope not in HOSTS:
        known = ', '.join(f'{host.scope} ({host.task})'
                          for host in HOSTS.values())
        raise UnknownHostError(
            f'default_scope is {scope!r}; mmeformer configs run in {known}. '
            'Inherit a base config of one of them (e.g. _base_ = '
            "'mmdet::_base_/default_runtime.py') or set default_scope.")
    return HOSTS[scope]
