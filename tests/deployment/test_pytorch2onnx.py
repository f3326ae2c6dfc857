"""tools/deployment/pytorch2onnx.py as users run it."""
import os
import os.path as osp
import runpy

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'deployment', 'pytorch2onnx.py')
S0 = osp.join(REPO, 'configs', 'classification', 'eformerv2_s0_in1k.py')


@pytest.fixture(scope='module')
def tool():
    return runpy.run_path(TOOL)['main']


def test_exports_and_verifies_a_checkpoint(tool, tmp_path, capsys):
    from mmengine.config import Config

    from mmeformer.deployment import load_model
    model = load_model(Config.fromfile(S0))
    checkpoint = str(tmp_path / 's0.pth')
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    out = str(tmp_path / 's0.onnx')
    tool([
        S0, '--checkpoint', checkpoint, '--shape', '64', '--verify',
        '--output-file', out
    ])
    printed = capsys.readouterr().out
    assert f'wrote {out}' in printed
    assert 'verified at 64x64' in printed
    assert sorted(os.listdir(tmp_path)) == ['s0.onnx', 's0.pth']


@pytest.mark.parametrize('args, message', [
    (['--kind', 'head'], "invalid choice: 'head'"),
    (['--kind', 'segmentor'], 'has no segmentor to export'),
    (['--shape', '16', '64'], 'input size 16x64 is too small'),
    (['--opset-version', '7'], 'opset 7 is not supported'),
    (['--output-file', '{tmp}/missing/out.onnx'], 'does not exist; create'),
    (['--checkpoint', '{tmp}/none.pth'], 'checkpoint {tmp}/none.pth does'),
    (['--checkpoint', '{tmp}/other.pth'], 'does not fit the model of'),
    (['--format', 'coreml', '--dynamic-export'], 'one fixed size'),
])
def test_bad_input_is_one_clear_error(tool, tmp_path, capsys, args, message):
    torch.save({'state_dict': {
        'backbone.stem.0.weight': torch.zeros(1)
    }}, str(tmp_path / 'other.pth'))
    before = sorted(os.listdir(tmp_path))
    args = [a.replace('{tmp}', str(tmp_path)) for a in args]
    with pytest.raises(SystemExit) as exit_info:
        tool([S0, '--output-file', str(tmp_path / 'out.onnx')] + args)
    assert exit_info.value.code not in (0, None)
    err = str(exit_info.value.code) + capsys.readouterr().err
    assert message.replace('{tmp}', str(tmp_path)) in err
    assert sorted(os.listdir(tmp_path)) == before
