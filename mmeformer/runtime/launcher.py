"""Refuse ``--launcher`` when the launcher did not start the process.

``--launcher pytorch`` and ``--launcher slurm`` tell mmengine to read the
process's rank and the group's size from the environment that torchrun or
srun sets; started from a plain shell, mmengine stops with ``KeyError:
'RANK'`` deep inside ``init_dist``. :func:`check_launcher_environment` looks
first and says how to start the run instead.
"""
import os
from typing import Dict, Tuple

from .errors import UnsupportedOptionError

__all__ = ['LAUNCHER_VARIABLES', 'check_launcher_environment']

#: The variables mmengine reads for each launcher.
LAUNCHER_VARIABLES: Dict[str, Tuple[str, ...]] = {
    'pytorch': ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
    'slurm': ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
}

#: The arguments of each tool before its options, in its launch scripts.
_TOOL_ARGUMENTS = {
    'train': 'CONFIG',
    'test': 'CONFIG CHECKPOINT',
    'search': 'CONFIG CHECKPOINT'
}


def _how_to_start(launcher: str, script: str) -> str:
    arguments = _TOOL_ARGUMENTS.get(script, 'CONFIG')
    if launcher == 'pytorch':
        return (f'start it with bash tools/dist_{script}.sh {arguments} '
                f'NUM_PROCESSES, or torchrun --nproc-per-node NUM_PROCESSES '
                f'tools/{script}.py {arguments} --launcher pytorch')
    return (f'start it with bash tools/slurm_{script}.sh PARTITION JOB_NAME '
            f'{arguments}{" WORK_DIR" if script == "train" else ""}, or srun '
            f'... python tools/{script}.py {arguments} --launcher slurm')


def check_launcher_environment(launcher: str, script: str = 'train') -> None:
    """Check that the launcher named by ``--launcher`` started this process.

    Args:
        launcher (str): 'none', 'pytorch' or 'slurm'.
        script (str): The tool, 'train', 'test' or 'search', for the
            message.
            Defaults to 'train'.

    Raises:
        UnsupportedOptionError: If variables the launcher sets are missing,
            naming them and the commands that start such a run.
    """
    missing = [
        name for name in LAUNCHER_VARIABLES.get(launcher, ())
        if name not in os.environ
    ]
    if not missing:
        return
    starter = 'torchrun' if launcher == 'pytorch' else 'srun'
    raise UnsupportedOptionError(
        f'--launcher {launcher} needs the environment that {starter} sets, '
        f'and {", ".join(missing)} {"is" if len(missing) == 1 else "are"} '
        f'not set: {_how_to_start(launcher, script)}; for one process, '
        'leave --launcher out.')
