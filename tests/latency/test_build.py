"""mmeformer.latency.build: measuring a table of a tiny space, resuming it,
refusing to mix settings."""
import json
import os

import pytest

from mmeformer.latency import LatencyTable, LatencyTableError, build_table

FAST = dict(input_size=64, threads=1, repeats=2, warmup=1, with_head=True)


def test_builds_a_table_that_loads_back_and_resumes(tiny_space, tmp_path):
    path = str(tmp_path / 'torch.json')
    lines = []
    table = build_table(
        tiny_space, 'torch', path=path, log=lines.append, **FAST)
    assert table.complete and len(table.entries) == 13
    assert all(ms > 0 for ms in table.entries.values())
    assert lines[-1].startswith('13/13 blocks')
    loaded = LatencyTable.load(
        path,
        expect=dict(
            runtime='torch',
            input_size=(64, 64),
            space_fingerprint=tiny_space.fingerprint(),
            threads=1))
    assert loaded.entries == table.entries
    assert loaded.meta['versions']['torch']

    # An interrupted build: two entries never written. The rerun measures
    # them and keeps the others.
    data = json.loads(open(path).read())
    del data['entries']['attn3:32x2'], data['entries']['down2:16-24']
    with open(path, 'w') as f:
        json.dump(data, f)
    lines.clear()
    resumed = build_table(
        tiny_space, 'torch', path=path, log=lines.append, **FAST)
    assert lines == ['13/13 blocks, ' + lines[0].split(', ')[1]]
    assert resumed.complete
    kept = {k: v for k, v in table.entries.items() if k in data['entries']}
    assert {k: resumed.entries[k] for k in kept} == kept
    assert os.listdir(tmp_path) == ['torch.json']


def test_refuses_to_mix_settings(tiny_space, tmp_path):
    path = str(tmp_path / 'torch.json')
    build_table(tiny_space, 'torch', path=path, **FAST)
    before = open(path).read()
    with pytest.raises(
            LatencyTableError,
            match='measured with threads 1, '
            'not 2; tables are never mixed'):
        build_table(tiny_space, 'torch', path=path, **dict(FAST, threads=2))
    with pytest.raises(LatencyTableError, match='input_size'):
        build_table(
            tiny_space, 'torch', path=path, **dict(FAST, input_size=96))
    assert open(path).read() == before


@pytest.mark.parametrize('runtime, precision, match', [
    ('tensorrt', 'fp32', "unknown runtime 'tensorrt'; choose one of torch, "
     'onnxruntime, openvino'),
    ('torch', 'fp16', 'the torch runtime runs fp32 only'),
])
def test_refuses_bad_runtimes_before_writing(tiny_space, tmp_path, runtime,
                                             precision, match):
    path = str(tmp_path / 'table.json')
    with pytest.raises(ValueError, match=match):
        build_table(tiny_space, runtime, precision, path=path, **FAST)
    assert os.listdir(tmp_path) == []


def test_names_the_requirements_of_a_missing_runtime(tiny_space, tmp_path,
                                                     monkeypatch):
    # An import of a module set to None in sys.modules raises ImportError.
    monkeypatch.setitem(__import__('sys').modules, 'openvino', None)
    with pytest.raises(
            ValueError,
            match='openvino is not installed: pip '
            'install -r requirements/deploy.txt'):
        build_table(
            tiny_space, 'openvino', path=str(tmp_path / 't.json'), **FAST)
    assert os.listdir(tmp_path) == []


def test_onnxruntime_table_shares_exports(tiny_space, tmp_path):
    exports = tmp_path / 'exports'
    exports.mkdir()
    path = str(tmp_path / 'ort.json')
    table = build_table(
        tiny_space, 'onnxruntime', path=path, work_dir=str(exports), **FAST)
    assert table.complete and table.meta['versions']['onnxruntime']
    assert len(os.listdir(exports)) == 13


def test_resuming_a_version_1_table_adds_the_v1_blocks(tiny_space, tmp_path,
                                                       v1_entries):
    path = str(tmp_path / 'torch.json')
    first = build_table(tiny_space, 'torch', path=path, **FAST)
    assert not first.with_v1 and len(first.entries) == 13
    # The file as the first table format wrote it.
    data = json.loads(open(path).read())
    del data['meta']['with_v1']
    data['version'] = 1
    with open(path, 'w') as f:
        json.dump(data, f)
    lines = []
    table = build_table(
        tiny_space, 'torch', path=path, with_v1=True, log=lines.append, **FAST)
    assert lines[-1].startswith('42/42 blocks')
    assert table.with_v1 and table.complete
    assert set(table.entries) == set(first.entries) | set(v1_entries)
    assert {k: table.entries[k] for k in first.entries} == first.entries
    saved = json.loads(open(path).read())
    assert saved['version'] == 2 and saved['meta']['with_v1'] is True
    # Not asking for them again keeps them.
    again = build_table(tiny_space, 'torch', path=path, **FAST)
    assert again.with_v1 and again.entries == table.entries
