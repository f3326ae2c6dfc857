"""--launcher without the environment of its launcher."""
import pytest

from mmeformer.runtime import (LAUNCHER_VARIABLES, UnsupportedOptionError,
                               check_launcher_environment)


@pytest.fixture
def no_launcher(monkeypatch):
    for names in LAUNCHER_VARIABLES.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_torchrun_environment_is_required(no_launcher):
    with pytest.raises(UnsupportedOptionError) as error:
        check_launcher_environment('pytorch', 'train')
    assert str(error.value) == (
        '--launcher pytorch needs the environment that torchrun sets, and '
        'RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT are not set: start it '
        'with bash tools/dist_train.sh CONFIG NUM_PROCESSES, or torchrun '
        '--nproc-per-node NUM_PROCESSES tools/train.py CONFIG --launcher '
        'pytorch; for one process, leave --launcher out.')
    for name, value in (('RANK', '0'), ('WORLD_SIZE', '2'), ('MASTER_ADDR',
                                                             '127.0.0.1')):
        no_launcher.setenv(name, value)
    with pytest.raises(UnsupportedOptionError, match='MASTER_PORT is not'):
        check_launcher_environment('pytorch', 'test')
    no_launcher.setenv('MASTER_PORT', '29500')
    check_launcher_environment('pytorch', 'test')


def test_srun_environment_is_required(no_launcher):
    with pytest.raises(UnsupportedOptionError) as error:
        check_launcher_environment('slurm', 'test')
    message = str(error.value)
    assert 'SLURM_PROCID, SLURM_NTASKS, SLURM_NODELIST are not set' in message
    assert ('bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT, '
            'or srun ... python tools/test.py CONFIG CHECKPOINT --launcher '
            'slurm') in message
    for name in LAUNCHER_VARIABLES['slurm']:
        no_launcher.setenv(name, '1')
    check_launcher_environment('slurm', 'train')


def test_one_process_needs_nothing(no_launcher):
    check_launcher_environment('none', 'train')
