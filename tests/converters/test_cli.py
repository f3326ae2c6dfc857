"""tools/model_converters/efficientformer_to_mmeformer.py."""
import importlib.util
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
