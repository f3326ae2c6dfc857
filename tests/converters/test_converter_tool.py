"""tools/model_converters/efficientformer_to_mmeformer.py."""
import importlib.util
import os
import os.path as osp

import pytest
import torch
from checkpoint_sources import REPO, random_tensors

from mmeformer.converters import SOURCES


@pytest.fixture(scope='module')
def cli():
    path = osp.join(REPO, 'tools', 'model_converters',
                    'efficientformer_to_mmeformer.py')
    spec = importlib.util.spec_from_file_location('converter_cli', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help(cli, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(['--help'])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for word in list(SOURCES) + [
            '--dense-bias', 'zero', 'resize', 'weights_only=True',
            'efficientformer_l1'
    ]:
        assert word in text


def test_convert_and_summary(cli, capsys, source_shapes, tmp_path):
    src = tmp_path / 'eformer_s0_450.pth'
    torch.save(
        dict(model=random_tensors(source_shapes('official', 's0'))), src)
    out = tmp_path / 'out.pth'
    assert cli.main([str(src), '--source', 'official', '--out', str(out)]) == 0
    text = capsys.readouterr().out
    assert "Read 573 tensors from checkpoint['model']" in text
    assert 'Detected variant efficientformerv2_s0' in text
    assert 'Mapped 568 tensors' in text
    assert 'Dropped 5: bias index buffer' in text
    assert f'Wrote {out}' in text
    assert out.is_file()

    out.unlink()
    assert cli.main([
        str(src), '--source', 'official', '--out',
        str(out), '--variant', 's2', '--quiet'
    ]) == 1
    captured = capsys.readouterr()
    assert captured.out == ''
    assert captured.err.startswith('error: The checkpoint does not hold '
                                   'efficientformerv2_s2')
    assert 'Traceback' not in captured.err
    assert not out.exists()


@pytest.fixture
def official_s0(source_shapes, tmp_path):
    src = tmp_path / 'eformer_s0_450.pth'
    torch.save(
        dict(model=random_tensors(source_shapes('official', 's0'))), src)
    return src


def run(cli, capsys, *argv):
    """Exit status and stderr of the converter with ``argv``."""
    status = cli.main([str(arg) for arg in argv])
    return status, capsys.readouterr().err


def test_out_paths(cli, capsys, official_s0, tmp_path):
    """--out: a missing folder, a file as folder, a folder as output."""
    missing = tmp_path / 'typo' / 'deeper' / 'out.pth'
    status, err = run(cli, capsys, official_s0, '--source', 'official',
                      '--out', missing)
    assert status == 1 and 'Traceback' not in err
    assert f'the folder {missing.parent} does not exist' in err
    assert not (tmp_path / 'typo').exists()

    blocker = tmp_path / 'blocker'
    blocker.write_bytes(b'')
    status, err = run(cli, capsys, official_s0, '--source', 'official',
                      '--out', blocker / 'out.pth')
    assert status == 1
    assert f'{blocker} is a file, not a folder' in err

    folder = tmp_path / 'converted'
    folder.mkdir()
    status, _ = run(cli, capsys, official_s0, '--source', 'official', '--out',
                    folder, '--quiet')
    assert status == 0
    assert os.listdir(folder) == ['efficientformerv2_s0_in1k.pth']


def test_a_folder_as_input_is_named(cli, capsys, tmp_path):
    status, err = run(cli, capsys, tmp_path, '--source', 'timm')
    assert status == 1
    assert f'{tmp_path} is a folder' in err


def test_mmeformer_files_need_no_conversion(cli, capsys, official_s0,
                                            tmp_path):
    converted = tmp_path / 'converted.pth'
    assert run(cli, capsys, official_s0, '--source', 'official', '--out',
               converted, '--quiet')[0] == 0
    status, err = run(cli, capsys, converted, '--source', 'timm', '--out',
                      tmp_path / 'again.pth')
    assert status == 1
    assert "already in mmeformer's layout" in err
    assert 'needs no conversion' in err
    assert len(err.splitlines()) <= 3
    assert not (tmp_path / 'again.pth').exists()


def test_a_wrong_source_names_the_right_one(cli, capsys, official_s0,
                                            tmp_path):
    status, err = run(cli, capsys, official_s0, '--source', 'timm', '--out',
                      tmp_path / 'out.pth')
    assert status == 1
    assert 'Its names are those of --source official' in err
