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
    assert message.startswith(
        'mmeformer::detectoin/maskrcnn_eformerv2_s2_coco.py: no such config '
        'file. The mmeformer:: configs are in classification/, ')
    assert 'detection/, segmentation/.' in message


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
