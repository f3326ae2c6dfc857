"""tools/analysis_tools/latency_table.py: predict, and its refusals."""
import json
import os.path as osp
import runpy

import pytest

from mmeformer.latency import LatencyTable

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'latency_table.py')


@pytest.fixture(scope='module')
def tool():
    return runpy.run_path(TOOL)


def test_predict(tool, tiny_meta, hand_entries, hand_arch, tmp_path, capsys):
    path = str(tmp_path / 'table.json')
    LatencyTable(tiny_meta, hand_entries).save(path)
    tool['main'](['predict', path, json.dumps(hand_arch)])
    assert capsys.readouterr().out.splitlines()[-1].endswith(': 6959.000 ms')
    with pytest.raises(
            SystemExit,
            match="latency_table.py predict: error: "
            "arch 's2' lies outside the latency table's search "
            'space: Stage 0 has 4 blocks'):
        tool['main'](['predict', path, 's2'])
    with pytest.raises(
            SystemExit, match="'x' is neither a published V2 "
            'name'):
        tool['main'](['predict', path, 'x'])


def test_build_refuses_a_missing_folder(tool, tmp_path):
    out = str(tmp_path / 'missing' / 'table.json')
    with pytest.raises(SystemExit, match='the folder .* does not exist'):
        tool['main'](['build', '--out', out])
