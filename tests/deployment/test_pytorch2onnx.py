"""tools/deployment/pytorch2onnx.py as users run it."""
import os
import os.path as osp
import runpy

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'deployment', 'pytorch2onnx.py')
S0 = osp.join(REPO, 'configs', 'classification', 'eformerv2_s0_in1k.py')


@pytest.fixture(scope='module')
def tool():
    return runpy.run_path(TOOL)['main']


def test_exports_and_verifies_a_checkpoint(tool, load_cfg, random_checkpoint,
                                           tmp_path, capsys):
    checkpoint = random_checkpoint(
        load_cfg('classification/'
                 'eformerv2_s0_in1k.py'))
    out = str(tmp_path / 's0.onnx')
    tool([
        S0, '--checkpoint', checkpoint, '--dynamic-export', '--verify',
        '--verify-shapes', '64', '64', '--verify-shapes', '65', '97',
        '--output-file', out
    ])
    printed = capsys.readouterr().out
    assert f'wrote {out}' in printed
    # Both runtimes at fp32, at every size and at batch 2.
    for runtime in ('onnxruntime', 'openvino'):
        for check in ('64x64, batch 1', '65x97, batch 1', '64x64, batch 2'):
            assert f'verified {runtime} fp32 at {check}' in printed
    assert sorted(os.listdir(tmp_path)) == ['random_0.pth', 's0.onnx']


def perturb_one_bias_table(path, scale=0.1):
    """Add noise to the last attention-bias table in the file (the table's
    values are of order 1)."""
    model = onnx.load(path)
    initializers = {init.name: init for init in model.graph.initializer}
    table = [
        initializers[node.input[0]] for node in model.graph.node
        if node.op_type == 'Gather' and node.input[0] in initializers
        and initializers[node.input[0]].data_type == onnx.TensorProto.FLOAT
    ][-1]
    values = numpy_helper.to_array(table)
    noise = np.random.default_rng(0).standard_normal(values.shape)
    table.CopyFrom(
        numpy_helper.from_array((values + scale * noise).astype(np.float32),
                                table.name))
    onnx.save(model, path)


def test_verify_fails_on_a_perturbed_bias_table(tool, load_cfg,
                                                random_checkpoint, tmp_path,
                                                monkeypatch, capsys):
    """Noise of 0.1 on one table moves the backbone's features by 2.7e-4 of
    their magnitude (the pooled classifier logits by only 3e-5)."""
    export = tool.__globals__['export_onnx']

    def export_then_perturb(*args, **kwargs):
        path = export(*args, **kwargs)
        perturb_one_bias_table(path)
        return path

    monkeypatch.setitem(tool.__globals__, 'export_onnx', export_then_perturb)
    checkpoint = random_checkpoint(
        load_cfg('classification/'
                 'eformerv2_s0_in1k.py'))
    with pytest.raises(SystemExit) as exit_info:
        tool([
            S0, '--kind', 'backbone', '--checkpoint', checkpoint, '--shape',
            '64', '--verify', '--verify-runtimes', 'onnxruntime',
            '--output-file',
            str(tmp_path / 's0.onnx')
        ])
    message = str(exit_info.value.code)
    assert 'verification failed' in message
    assert 'onnxruntime fp32 differs from fp32 PyTorch by' in message


@pytest.mark.parametrize('args, message', [
    (['--kind', 'head'], "invalid choice: 'head'"),
    (['--kind', 'segmentor'], 'has no segmentor to export'),
    (['--shape', '16', '64'], 'input size 16x64 is too small'),
    (['--opset-version', '7'], 'opset 7 is not supported'),
    (['--output-file', '{tmp}/missing/out.onnx'], 'does not exist; create'),
    (['--checkpoint', '{tmp}/none.pth'], 'checkpoint {tmp}/none.pth does'),
    (['--checkpoint', '{tmp}/other.pth'], 'does not fit the model of'),
    (['--format', 'coreml', '--dynamic-export'], 'one fixed size'),
    (['--format', 'coreml', '--precision', 'bf16'], 'in fp32 or fp16, not'),
    (['--precision', 'bf16'], 'how --verify runs the file; add --verify'),
    (['--verify', '--precision', 'int8'], 'int8 runs a quantized file'),
    (['--verify', '--precision', 'bf16', '--verify-runtimes', 'onnxruntime'
      ], 'onnxruntime cannot run bf16 here'),
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
