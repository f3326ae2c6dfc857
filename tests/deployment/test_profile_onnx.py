"""tools/analysis_tools/profile_onnx.py: ONNX Runtime time per op type."""
import os.path as osp
import runpy

import pytest
import torch
import torch.nn as nn

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'profile_onnx.py')


class Bias(nn.Module):

    def forward(self, x):
        return x * 2 + 1


class Model(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.attn_bias = Bias()

    def forward(self, x):
        return self.attn_bias(self.conv(x))


@pytest.fixture(scope='module')
def tool():
    return runpy.run_path(TOOL)


@pytest.fixture
def dynamic_file(export_dynamic):
    return export_dynamic(Model(), torch.randn(1, 3, 16, 16))


def test_groups_nodes_by_op_type_and_bias_resize(tool, dynamic_file, capsys):
    totals = tool['profile_onnx'](
        dynamic_file, shape=(20, 24), threads=1, runs=2)
    # Whatever ONNX Runtime fuses, the nodes named .../attn_bias/... are
    # one group, and the others keep their op types.
    assert totals[tool['BIAS_GROUP']] > 0
    assert not {'Mul', 'Add'} & set(totals)
    assert len(totals) > 1
    tool['main']([dynamic_file, '--shape', '20', '24', '--top', '1'])
    printed = capsys.readouterr().out
    assert printed.startswith('| runtime | op type | count | total (ms) |')
    assert '| other |' in printed


def test_dynamic_file_needs_a_shape(tool, dynamic_file):
    with pytest.raises(SystemExit, match='give --shape H W'):
        tool['main']([dynamic_file])
