import argparse
import errno
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
from mmengine.config import Config
from mmengine.utils import get_installed_path

import mmeformer  # noqa: F401  (registers the `mmeformer::` prefix)
from mmeformer.utils import (CfgOptionsAction, closest_files,
                             missing_file_message)

CONFIGS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs')
RESEARCH_CONFIG = textwrap.dedent("""
    _base_ = 'mmeformer::detection/maskrcnn_eformerv2_s0_coco.py'
    model = dict(backbone=dict(drop_path_rate=0.3))
""")


def test_research_config_inherits_ours(tmp_path):
    path = tmp_path / 'my_research_config.py'
    path.write_text(RESEARCH_CONFIG)
    cfg = Config.fromfile(str(path))
    assert cfg.model.backbone.type == 'mmeformer.EfficientFormerV2'
    assert cfg.model.backbone.drop_path_rate == 0.3
    # Everything else comes from the base, which itself inherits mmdet's.
    assert cfg.model.type == 'MaskRCNN'
    assert cfg.default_scope == 'mmdet'


@pytest.mark.parametrize('name', [
    'classification/eformerv2_s0_in1k.py',
    'detection/maskrcnn_eformerv2_s0_coco.py',
    'demo/fpn_eformerv2_s0_shapes.py',
])
def test_a_base_of_ours_reads_as_the_file_itself(tmp_path, name):
    """``_base_ = 'mmeformer::X'`` alone gives X, with no ``_scope_`` added.

    mmengine would give each top-level ``type`` dict of X the scope
    ``mmeformer``, where MMPretrain's data preprocessor and MMSegmentation's
    datasets and transforms are not found.
    """
    path = tmp_path / 'my_research_config.py'
    path.write_text(f"_base_ = 'mmeformer::{name}'\n")
    inherited = Config.fromfile(str(path)).to_dict()
    assert inherited == Config.fromfile(osp.join(CONFIGS, name)).to_dict()


def test_mmengine_scopes_prefixed_bases(tmp_path):
    """What mmeformer.utils.config undoes, and only for ``mmeformer::``:
    mmengine's ``Config._get_cfg_path`` returns the prefix as the scope."""
    get_cfg_path = Config._get_cfg_path.__wrapped__
    filename = str(tmp_path / 'my_research_config.py')
    ours = 'mmeformer::detection/maskrcnn_eformerv2_s0_coco.py'
    assert get_cfg_path(ours, filename)[1] == 'mmeformer'
    assert Config._get_cfg_path(ours, filename)[1] is None
    theirs = 'mmdet::_base_/default_runtime.py'
    assert Config._get_cfg_path(theirs,
                                filename) == get_cfg_path(theirs, filename)
    assert get_cfg_path(theirs, filename)[1] == 'mmdet'


def test_a_script_needs_to_import_mmeformer_first(tmp_path):
    """Documented behaviour: without the import mmengine knows no prefix.

    Run from a folder outside the checkout, with nothing of it on the path:
    in the checkout, ``mmeformer.egg-info`` in the current folder would let
    mmengine find the configs however mmeformer is installed.
    """
    path = tmp_path / 'my_research_config.py'
    path.write_text(RESEARCH_CONFIG)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    code = ('import sys; from mmengine.config import Config; '
            '{}Config.fromfile(sys.argv[1]); print("parsed")')
    without = subprocess.run(
        [sys.executable, '-c',
         code.format(''), path.name],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env)
    assert without.returncode != 0
    assert 'does not support to load mmeformer config' in without.stderr
    with_import = subprocess.run(
        [sys.executable, '-c',
         code.format('import mmeformer; '), path.name],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env)
    assert with_import.returncode == 0, with_import.stderr
    assert 'parsed' in with_import.stdout


def _message_for(tmp_path, base):
    """What :func:`missing_file_message` says about a config's bad base."""
    path = tmp_path / 'my_research_config.py'
    path.write_text(f'_base_ = {base!r}\n')
    with pytest.raises(FileNotFoundError) as info:
        Config.fromfile(str(path))
    return missing_file_message(info.value)


def test_a_missing_base_of_ours_is_named_with_the_closest(tmp_path):
    message = _message_for(
        tmp_path, 'mmeformer::detection/maskrcnn_eformerv2_s2_cocoo.py')
    assert message.startswith(
        'mmeformer::detection/maskrcnn_eformerv2_s2_cocoo.py: no such '
        'config file. Did you mean '
        'mmeformer::detection/maskrcnn_eformerv2_s2_coco.py or ')
    assert '\n' not in message
    message = _message_for(
        tmp_path, 'mmeformer::detectoin/maskrcnn_eformerv2_s2_coco.py')
    assert message == (
        'mmeformer::detectoin/maskrcnn_eformerv2_s2_coco.py: no such config '
        'file. Did you mean mmeformer::detection/maskrcnn_eformerv2_s2_coco.py'
        '?')
    message = _message_for(tmp_path, 'mmeformer::xyz/maskrcnn.py')
    assert message.startswith('mmeformer::xyz/maskrcnn.py: no such config '
                              'file. The mmeformer:: configs are in ')
    assert 'classification/' in message and 'detection/' in message


def test_a_missing_local_base_is_named_with_the_closest(tmp_path):
    (tmp_path / 'my_base.py').write_text('a = 1\n')
    message = _message_for(tmp_path, './my_bsae.py')
    assert message == (f'{tmp_path}/my_bsae.py: no such config file. '
                       f'Did you mean {tmp_path}/my_base.py?')
    assert closest_files(str(tmp_path / 'nowhere' / 'my_bsae.py')) == []


def test_an_install_without_configs_says_how_to_reinstall():
    """What mmengine raises for a PEP 660 editable install of mmeformer.

    No such install exists here, so mmengine itself, a wheel without
    ``.mim``, stands in for it.
    """
    index = osp.join(get_installed_path('mmengine'), '.mim', 'model-index.yml')
    error = FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), index)
    message = missing_file_message(error, 'mmengine', 'mmengine')
    assert message.startswith(f'{index} does not exist: mmengine and MIM '
                              'look for mmengine configs in ')
    assert '`pip install --no-use-pep517 -e .`' in message


def test_cfg_options_without_equals_are_a_usage_error(capsys):
    parser = argparse.ArgumentParser(prog='train.py')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    assert parser.parse_args(['--cfg-options', 'a.b=1', 'c=[1,2]']) \
        .cfg_options == {'a.b': 1, 'c': [1, 2]}
    with pytest.raises(SystemExit) as info:
        parser.parse_args(['--cfg-options', 'a.b=1', 'foo'])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --cfg-options: 'foo' is not KEY=VALUE" in err
