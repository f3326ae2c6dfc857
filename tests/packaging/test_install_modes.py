"""``mmeformer::`` configs and MIM from a research folder, per install mode.

mmengine and MIM find our configs in ``<location>/mmeformer/.mim``, where
``<location>`` is where the distribution's metadata lives. Every test runs
from a temporary folder outside the checkout with nothing of the checkout on
``PYTHONPATH``: in the checkout, ``mmeformer.egg-info`` in the current folder
would make any install mode look right. Covered, each for the parse of
a research config, our ``tools/train.py``, ``mim search``, ``mim train`` and
``mim test``: the develop-mode install ``tools/setup_env.sh`` makes (this
environment's), and a wheel built from an sdist of the sources and
installed into a scratch folder.
"""
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap

import pytest

# Each test runs a fresh interpreter, most of them a tool or MIM, and the
# wheel is built from an sdist: minutes, left out of `make test-fast`.
pytestmark = pytest.mark.slow

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


@pytest.fixture(params=['develop', 'wheel'])
def install(request):
    """``(PYTHONPATH, package folder)`` of an install mode: this
    environment's develop-mode install, or the scratch wheel install."""
    if request.param == 'develop':
        return None, osp.join(REPO, 'mmeformer')
    target = request.getfixturevalue('wheel_target')
    return str(target), str(target / 'mmeformer')


def test_mmeformer_bases_resolve(research, install):
    pythonpath, package = install
    proc = _run(['-c', PARSE], research, pythonpath)
    assert proc.returncode == 0, proc.stderr
    parsed, module, mmengine_path, mim_path = proc.stdout.split('\n')[:4]
    assert parsed == 'mmeformer.EfficientFormerV2 0.3'
    assert module == osp.join(package, '__init__.py')
    assert mmengine_path == mim_path == package


def test_the_wheel_carries_real_files(wheel_target):
    index = wheel_target / 'mmeformer' / '.mim' / 'model-index.yml'
    assert index.is_file() and not index.is_symlink()


def _stops_at_the_missing_coco(proc, tool, package):
    """The research config parsed and the tool ran: it stops at its first
    check after that, the COCO of the inherited dataset settings, in one
    line. (MIM adds a traceback of its own when a tool it ran fails; none
    may come from our tool.)"""
    assert proc.returncode == 1, proc.stderr
    assert f'{tool}: error: data/coco/' in proc.stderr
    assert f'File "{package}' not in proc.stderr


def test_train_tool_reads_a_research_config(research, install):
    pythonpath, package = install
    tool = osp.join(package, '.mim', 'tools', 'train.py')
    proc = _run([tool, 'my_cfg.py'], research, pythonpath)
    _stops_at_the_missing_coco(proc, 'train.py', package)


def test_mim_search_lists_our_models(research, install):
    proc = _run(['-m', 'mim', 'search', 'mmeformer', '--field', 'config'],
                research, install[0])
    assert proc.returncode == 0, proc.stderr
    for config in ('classification/eformerv2_s2_in1k.py',
                   'detection/maskrcnn_eformerv2_s2_coco.py',
                   'segmentation/fpn_eformerv2_s2_ade20k_40k.py'):
        assert f'configs/{config}' in proc.stdout


def test_mim_train_and_test_run_our_tools(research, install):
    pythonpath, package = install
    tools = osp.join(package, '.mim', 'tools')
    proc = _run(['-m', 'mim', 'train', 'mmeformer', 'my_cfg.py'], research,
                pythonpath)
    assert osp.join(tools, 'train.py') in proc.stdout + proc.stderr
    _stops_at_the_missing_coco(proc, 'train.py', package)
    (research / 'ckpt.pth').write_bytes(b'')
    proc = _run([
        '-m', 'mim', 'test', 'mmeformer', 'my_cfg.py', '--checkpoint',
        'ckpt.pth'
    ], research, pythonpath)
    assert osp.join(tools, 'test.py') in proc.stdout + proc.stderr
    _stops_at_the_missing_coco(proc, 'test.py', package)
