"""``mmeformer::`` configs and MIM from a research folder, per install mode.

mmengine and MIM find our configs in ``<location>/mmeformer/.mim``, where
``<location>`` is where the distribution's metadata lives. Every test runs
from a temporary folder outside the checkout with nothing of the checkout on
``PYTHONPATH``: in the checkout, ``mmeformer.egg-info`` in the current folder
would make any install mode look right. Covered: the develop-mode install
``tools/setup_env.sh`` makes (this environment's), and a wheel built from
an sdist of the sources and installed into a scratch folder.
"""
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RESEARCH_CONFIG = textwrap.dedent("""
    _base_ = 'mmeformer::detection/maskrcnn_eformerv2_s2_coco.py'
    model = dict(backbone=dict(drop_path_rate=0.3))
""")
# Parses the research config the way a script of the user's own does and
# says where mmeformer, mmengine's lookup and MIM's lookup went.
PARSE = textwrap.dedent("""
    import mmeformer
    from mim.utils import get_installed_path as mim_path
    from mmengine.config import Config
    from mmengine.utils import get_installed_path
    cfg = Config.fromfile('my_cfg.py')
    print(cfg.model.backbone.type, cfg.model.backbone.drop_path_rate)
    print(mmeformer.__file__)
    print(get_installed_path('mmeformer'))
    print(mim_path('mmeformer'))
""")


def _run(args, cwd, pythonpath=None, timeout=300):
    """Run ``python args`` in ``cwd`` with only ``pythonpath`` added."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    if pythonpath:
        env['PYTHONPATH'] = pythonpath
    return subprocess.run([sys.executable, *args],
                          cwd=cwd,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=timeout)


def _succeeds(args, cwd):
    proc = _run(args, cwd)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def research(tmp_path):
    """A research folder outside the checkout with a config inheriting ours.
    """
    (tmp_path / 'my_cfg.py').write_text(RESEARCH_CONFIG)
    return tmp_path


@pytest.fixture(scope='session')
def wheel_target(tmp_path_factory):
    """mmeformer installed into a scratch folder from a wheel built once.

    The wheel is built from an sdist, as pip does for a package index that
    has only the sdist; the sdist is made from a copy of the sources, so
    that building leaves the checkout as it is.
    """
    root = tmp_path_factory.mktemp('wheel')
    src = root / 'src'
    src.mkdir()
    for name in ('setup.py', 'setup.cfg', 'MANIFEST.in', 'README.md',
                 'model-index.yml'):
        shutil.copy2(osp.join(REPO, name), src / name)
    ignore = shutil.ignore_patterns('__pycache__', '.mim', '*.pyc')
    for name in ('mmeformer', 'configs', 'tools', 'requirements'):
        shutil.copytree(osp.join(REPO, name), src / name, ignore=ignore)
    dist = root / 'dist'
    pip = ['-m', 'pip', '-q', '--no-input']
    _succeeds(['setup.py', '-q', 'sdist', '-d', str(dist)], src)
    sdist, = dist.glob('mmeformer-*.tar.gz')
    _succeeds([
        *pip, 'wheel', '--no-deps', '--no-build-isolation', '-w',
        str(dist),
        str(sdist)
    ], root)
    wheel, = dist.glob('mmeformer-*.whl')
    target = root / 'target'
    _succeeds([
        *pip, 'install', '--no-deps', '--no-build-isolation', '--target',
        str(target),
        str(wheel)
    ], root)
    return target


def test_develop_install_resolves_mmeformer_bases(research):
    proc = _run(['-c', PARSE], research)
    assert proc.returncode == 0, proc.stderr
    parsed, module, mmengine_path, mim_path = proc.stdout.split('\n')[:4]
    assert parsed == 'mmeformer.EfficientFormerV2 0.3'
    package = osp.join(REPO, 'mmeformer')
    assert module == osp.join(package, '__init__.py')
    assert mmengine_path == mim_path == package


def test_train_tool_reads_a_research_config(research):
    """The config parses; the run stops at the first check after that: the
    COCO of the inherited dataset settings is missing."""
    proc = _run([osp.join(REPO, 'tools', 'train.py'), 'my_cfg.py'], research)
    assert proc.returncode == 1, proc.stderr
    assert 'train.py: error: data/coco/' in proc.stderr
    assert 'FileNotFoundError' not in proc.stderr


def test_mim_search_lists_our_models(research):
    proc = _run(['-m', 'mim', 'search', 'mmeformer', '--field', 'config'],
                research)
    assert proc.returncode == 0, proc.stderr
    for config in ('classification/eformerv2_s2_in1k.py',
                   'detection/maskrcnn_eformerv2_s2_coco.py',
                   'segmentation/fpn_eformerv2_s2_ade20k_40k.py'):
        assert f'configs/{config}' in proc.stdout


def test_wheel_resolves_mmeformer_bases(research, wheel_target):
    proc = _run(['-c', PARSE], research, pythonpath=str(wheel_target))
    assert proc.returncode == 0, proc.stderr
    parsed, module, mmengine_path, mim_path = proc.stdout.split('\n')[:4]
    assert parsed == 'mmeformer.EfficientFormerV2 0.3'
    package = str(wheel_target / 'mmeformer')
    assert module == osp.join(package, '__init__.py')
    assert mmengine_path == mim_path == package
    # The wheel carries real files, not links into the checkout.
    index = wheel_target / 'mmeformer' / '.mim' / 'model-index.yml'
    assert index.is_file() and not index.is_symlink()
