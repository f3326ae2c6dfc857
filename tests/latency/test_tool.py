"""tools/analysis_tools/latency_table.py: predict, accuracy, and their
refusals."""
import json
import os.path as osp
import runpy
import shlex

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
            SystemExit,
            match="'x' is neither a published name "
            r'\(l1 l3 l7 s0 s1 s2 l\) nor a V2 arch dict'):
        tool['main'](['predict', path, 'x'])
    with pytest.raises(SystemExit, match='holds no V1 blocks'):
        tool['main'](['predict', path, 'l1'])


def test_build_refuses_a_missing_folder(tool, tmp_path):
    out = str(tmp_path / 'missing' / 'table.json')
    with pytest.raises(SystemExit, match='the folder .* does not exist'):
        tool['main'](['build', '--out', out])


def test_epilog_examples_parse(tool):
    examples = tool['EPILOG'].split('examples:')[1].replace('\\\n', ' ')
    lines = [line for line in examples.splitlines() if line.strip()]
    commands = [shlex.split(line)[2:] for line in lines]
    names = [command[0] for command in commands]
    assert names == ['build', 'predict', 'accuracy', 'profile']
    for command in commands:
        tool['parse_args'](command)


def test_predict_v1(tool, v1_meta, hand_entries, v1_entries, tmp_path, capsys):
    path = str(tmp_path / 'table.json')
    LatencyTable(v1_meta, dict(hand_entries, **v1_entries)).save(path)
    tool['main'](['predict', path, 'l1', 'L7'])
    lines = capsys.readouterr().out.splitlines()
    # The table's machine is named, and that it is not this one.
    assert lines[0].endswith('on test CPU')
    assert lines[1].startswith('# made on another machine than this one')
    assert lines[2:] == ['l1: 1451.000 ms', 'L7: 43000.000 ms']


def test_accuracy_refuses_a_table_of_another_machine(tool, tiny_meta,
                                                     hand_entries, tmp_path,
                                                     capsys):
    path = str(tmp_path / 'table.json')
    LatencyTable(tiny_meta, hand_entries).save(path)
    with pytest.raises(
            SystemExit,
            match="accuracy: error: .* was measured for device 'test CPU', "
            'not .*; tables are never mixed'):
        tool['main'](['accuracy', path, '--random', '1'])
    assert capsys.readouterr().err == ''


def _rows(report):
    return {
        line.split(' | ')[0][2:]: line.strip('| ').split(' | ')[1:]
        for line in report.splitlines()
        if line.startswith('| ') and not line.startswith('| network')
    }


def test_accuracy_without_v1_blocks(tool, here_table, tmp_path):
    here_table.meta['with_v1'] = False
    path = str(tmp_path / 'table.json')
    here_table.save(path)
    out = str(tmp_path / 'report.md')
    tool['main'](['accuracy', path, '--random', '2', '--out', out])
    report = open(out).read()
    assert 'V1-L1, V1-L3 and V1-L7 left out: the table holds no V1 blocks' \
        in report
    rows = _rows(report)
    assert list(rows) == ['random 0', 'random 1']
    assert all(float(row[3]) > 0 for row in rows.values())
    assert 'Kendall tau' in report and 'over 2 networks' in report


@pytest.mark.slow
def test_accuracy_with_v1_networks(tool, here_table, tmp_path):
    path = str(tmp_path / 'table.json')
    here_table.save(path)
    out, png = str(tmp_path / 'report.md'), str(tmp_path / 'plot.png')
    tool['main']([
        'accuracy', path, '--random', '2', '--repeats', '1', '--out', out,
        '--plot', png
    ])
    rows = _rows(open(out).read())
    assert list(rows) == ['V1-L1', 'V1-L3', 'V1-L7', 'random 0', 'random 1']
    # Predicted from the hand-made V1 entries, measured whole.
    assert [rows[n][2] for n in ('V1-L1', 'V1-L3', 'V1-L7')
            ] == ['1451.00', '31000.00', '43000.00']
    assert all(float(row[3]) > 0 for row in rows.values())
    assert 'over 5 networks' in open(out).read()
    with open(png, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
