import argparse
import subprocess
import sys
import textwrap

import pytest
from mmengine.config import Config

import mmeformer  # noqa: F401  (registers the `mmeformer::` prefix)
from mmeformer.utils import CfgOptionsAction

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
    """Documented behaviour: without the import mmengine knows no prefix."""
    path = tmp_path / 'my_research_config.py'
    path.write_text(RESEARCH_CONFIG)
    code = ('import sys; from mmengine.config import Config; '
            '{}Config.fromfile(sys.argv[1]); print("parsed")')
    without = subprocess.run(
        [sys.executable, '-c',
         code.format(''), str(path)],
        capture_output=True,
        text=True)
    assert without.returncode != 0
    assert 'does not support to load mmeformer config' in without.stderr
    with_import = subprocess.run(
        [sys.executable, '-c',
         code.format('import mmeformer; '),
         str(path)],
        capture_output=True,
        text=True)
    assert with_import.returncode == 0, with_import.stderr
    assert 'parsed' in with_import.stdout


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
