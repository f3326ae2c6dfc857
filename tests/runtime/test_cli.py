"""The arguments and the error report the command-line tools share."""
import argparse
import os

import pytest

from mmeformer.runtime import (ConfigError, add_config_arguments,
                               add_launcher_arguments, exit_on_setup_error,
                               load_config, parse_tool_args)


def parser_with(**kwargs):
    parser = argparse.ArgumentParser(prog='tool.py')
    add_config_arguments(parser, **kwargs)
    return parser


@pytest.mark.parametrize('checkpoint,argv,expected', [
    ('none', ['cfg.py'], None),
    ('positional', ['cfg.py', 'w.pth'], 'w.pth'),
    ('option', ['cfg.py'], None),
    ('option', ['cfg.py', '--checkpoint', 'w.pth'], 'w.pth'),
])
def test_config_and_checkpoint(checkpoint, argv, expected):
    args = parser_with(checkpoint=checkpoint).parse_args(argv)
    assert args.config == 'cfg.py'
    assert getattr(args, 'checkpoint', None) == expected
    assert args.cfg_options is None


def test_cfg_options_are_read_as_mmengine_does():
    args = parser_with().parse_args([
        'cfg.py', '--cfg-options', 'train_cfg.max_epochs=2',
        'model.backbone.out_indices=[0,1]'
    ])
    assert args.cfg_options == {
        'train_cfg.max_epochs': 2,
        'model.backbone.out_indices': [0, 1]
    }


def test_cfg_options_item_without_equals_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parser_with().parse_args(['cfg.py', '--cfg-options', 'max_epochs'])
    assert exit_info.value.code == 2
    assert "'max_epochs' is not KEY=VALUE" in capsys.readouterr().err


def test_unknown_checkpoint_kind():
    with pytest.raises(ValueError, match='positional'):
        parser_with(checkpoint='required')


def test_help_names_the_examples_and_launch_scripts(capsys):
    parser = parser_with(cfg_options_example='model.backbone.arch=l3')
    add_launcher_arguments(parser, 'test')
    with pytest.raises(SystemExit):
        parser.parse_args(['--help'])
    out = ' '.join(capsys.readouterr().out.split())
    assert 'e.g. model.backbone.arch=l3; lists as key="[a,b]"' in out
    assert 'tools/dist_test.sh' in out and 'tools/slurm_test.sh' in out
    assert '--local-rank' not in out


def test_local_rank_becomes_the_environment_variable(monkeypatch):
    parser = parser_with()
    add_launcher_arguments(parser, 'train')
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    args = parse_tool_args(parser, ['cfg.py', '--local-rank', '3'])
    assert (args.launcher, os.environ['LOCAL_RANK']) == ('none', '3')
    # A launcher's own LOCAL_RANK wins.
    parse_tool_args(parser, ['cfg.py', '--local_rank', '5'])
    assert os.environ['LOCAL_RANK'] == '3'


def test_setup_errors_end_in_one_line_without_traceback(tmp_path):
    parser = parser_with()
    missing = str(tmp_path / 'missing.py')
    with pytest.raises(SystemExit) as exit_info:
        with exit_on_setup_error(parser):
            load_config(missing)
    assert exit_info.value.code == (
        f'tool.py: error: {missing}: no such config file. The configs are in '
        'configs/classification, configs/detection and '
        'configs/segmentation.')
    # Other errors are not the user's: they keep their traceback.
    with pytest.raises(KeyError):
        with exit_on_setup_error(parser):
            raise KeyError('bug')


def test_load_config_error_is_a_config_error(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('x = (\n')
    with pytest.raises(ConfigError, match='syntax error'):
        load_config(str(bad))
