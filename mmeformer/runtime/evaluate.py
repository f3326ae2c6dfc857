"""Evaluate a checkpoint in its host: the logic behind ``tools/test.py``."""
from typing import Optional

from mmengine.config import Config

from .checkpoint_fit import check_checkpoint
from .errors import UnsupportedOptionError
from .hosts import Host, get_host
from .launcher import check_launcher_environment
from .meta_model import build_meta_model, check_neck_inputs
from .preflight import check_test
from .runner import build_runner, load_config

__all__ = ['apply_test_options', 'evaluate']


def apply_test_options(cfg: Config,
                       host: Host,
                       checkpoint: str,
                       out: Optional[str] = None,
                       show_dir: Optional[str] = None) -> Config:
    """Apply the switches of ``tools/test.py`` to ``cfg``.

    Args:
        cfg (Config): The config, changed in place.
        host (Host): Its host.
        checkpoint (str): The weights to evaluate.
        out (str, optional): A ``.pkl`` file for the raw predictions.
        show_dir (str, optional): Where images with the predictions drawn
            on them go.

    Returns:
        Config: ``cfg``.

    Raises:
        UnsupportedOptionError: ``out`` not ending in ``.pkl`` or
            ``.pickle``.
    """
    cfg.load_from = checkpoint
    if show_dir is not None:
        host.show_images(cfg, show_dir)
    if out is not None:
        if not out.endswith(('.pkl', '.pickle')):
            raise UnsupportedOptionError(
                f'--out {out}: predictions are dumped with pickle; name a '
                '.pkl or .pickle file')
        evaluator = cfg.test_evaluator
        metrics = list(evaluator) if isinstance(evaluator,
                                                (list,
                                                 tuple)) else [evaluator]
        cfg.test_evaluator = metrics + [
            dict(type=host.dump_metric, out_file_path=out)
        ]
    return cfg


def evaluate(config: str,
             checkpoint: str,
             work_dir: Optional[str] = None,
             out: Optional[str] = None,
             show_dir: Optional[str] = None,
             cfg_options: Optional[dict] = None,
             launcher: str = 'none',
             partial_load: bool = False) -> dict:
    """Evaluate ``checkpoint`` on the test split of ``config``.

    Args:
        config (str): Path of the config.
        checkpoint (str): The weights to evaluate.
        work_dir (str, optional): Where logs and metrics go; defaults to the
            config's ``work_dir`` or ``./work_dirs/<config name>``.
        out (str, optional): See :func:`apply_test_options`.
        show_dir (str, optional): See :func:`apply_test_options`.
        cfg_options (dict, optional): Config overrides.
        launcher (str): 'none', 'pytorch' or 'slurm'. Defaults to 'none'.
        partial_load (bool): Evaluate a checkpoint that fits the model only
            in part. Defaults to False.

    Returns:
        dict: The host's metrics.

    Raises:
        SetupError: Before anything is built (the model only on the meta
            device), if the launcher did not start the process, the config
            cannot be read, names no supported host
            or describes a model that cannot be built, an option cannot
            work, the test data or the checkpoint is missing, or the
            checkpoint cannot be read or does not fit the model.
    """
    check_launcher_environment(launcher, 'test')
    cfg = load_config(config, cfg_options, work_dir, launcher)
    host = get_host(cfg)
    apply_test_options(cfg, host, checkpoint, out, show_dir)
    check_test(cfg, checkpoint)
    model = build_meta_model(cfg, host)
    check_neck_inputs(model, cfg)
    check_checkpoint(
        model,
        checkpoint,
        config,
        partial=partial_load,
        fix='evaluate a checkpoint of this config\'s model')
    del model
    return build_runner(cfg, host).test()
