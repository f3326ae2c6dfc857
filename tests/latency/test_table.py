"""mmeformer.latency.table: table files, written atomically, refused when
they are not the table asked for."""
import json
import os

import pytest

from mmeformer.latency import LatencyTable, LatencyTableError, space_blocks
from mmeformer.models.backbones import EfficientFormerV2Space


@pytest.fixture
def table(tiny_meta, tiny_space):
    entries = {
        b.key: 0.1 * (i + 1)
        for i, b in enumerate(space_blocks(tiny_space, True))
    }
    return LatencyTable(tiny_meta, entries)


@pytest.fixture
def saved(table, tmp_path):
    path = str(tmp_path / 'table.json')
    table.save(path)
    return path


def test_round_trip(table, saved, tmp_path):
    loaded = LatencyTable.load(
        saved,
        expect=dict(
            runtime='torch',
            precision='fp32',
            input_size=(64, 64),
            space_fingerprint=table.space.fingerprint(),
            device='test CPU'))
    assert loaded.entries == table.entries
    assert loaded.meta == table.meta
    assert loaded.space == table.space
    # Nothing but the table is left in the folder.
    assert os.listdir(tmp_path) == ['table.json']


@pytest.mark.parametrize(
    'expect, match',
    [(dict(runtime='onnxruntime'), "runtime 'torch', not 'onnxruntime'"),
     (dict(precision='bf16'), "precision 'fp32', not 'bf16'"),
     (dict(input_size=224), 'input_size 64x64, not 224x224'),
     (dict(device='another CPU'), "device 'test CPU', not 'another CPU'"),
     (dict(space_fingerprint=EfficientFormerV2Space.default().fingerprint()),
      'space_fingerprint')])
def test_refuses_a_table_made_for_something_else(saved, expect, match):
    with pytest.raises(LatencyTableError, match=match):
        LatencyTable.load(saved, expect=expect)


def test_refuses_truncated_and_foreign_files(saved, tmp_path):
    text = open(saved).read()
    truncated = tmp_path / 'truncated.json'
    truncated.write_text(text[:len(text) // 2])
    with pytest.raises(
            LatencyTableError, match='not valid JSON, perhaps '
            'truncated'):
        LatencyTable.load(str(truncated))
    foreign = tmp_path / 'foreign.json'
    foreign.write_text(json.dumps(dict(entries={'stem:8': 1.0})))
    with pytest.raises(LatencyTableError, match='is not a latency table'):
        LatencyTable.load(str(foreign))
    damaged = json.loads(text)
    damaged['entries']['block?'] = 1.0
    foreign.write_text(json.dumps(damaged))
    with pytest.raises(
            LatencyTableError,
            match="'block\\?' is not a "
            'latency-table block key'):
        LatencyTable.load(str(foreign))
    with pytest.raises(LatencyTableError, match='does not exist'):
        LatencyTable.load(str(tmp_path / 'missing.json'))


def test_refuses_an_incomplete_table_unless_asked(table, tmp_path):
    del table.entries['head:32']
    path = str(tmp_path / 'partial.json')
    table.save(path)
    with pytest.raises(
            LatencyTableError,
            match='holds 12 of 13 blocks '
            r'\(first missing: head:32\); rerun'):
        LatencyTable.load(path)
    assert LatencyTable.load(path, allow_incomplete=True).missing()[0].key \
        == 'head:32'


def test_save_refuses_a_missing_folder(table, tmp_path):
    with pytest.raises(LatencyTableError, match='does not exist'):
        table.save(str(tmp_path / 'no' / 'table.json'))
    assert os.listdir(tmp_path) == []


def test_reads_a_version_1_table_as_one_without_v1_blocks(saved, tmp_path):
    data = json.loads(open(saved).read())
    assert data['version'] == 2 and data['meta']['with_v1'] is False
    # The files of the first format: no with_v1, no V1 entries.
    del data['meta']['with_v1']
    data['version'] = 1
    old = tmp_path / 'old.json'
    old.write_text(json.dumps(data))
    table = LatencyTable.load(str(old))
    assert not table.with_v1 and table.complete
    data['version'] = 3
    old.write_text(json.dumps(data))
    with pytest.raises(
            LatencyTableError,
            match='is a version 3 latency table; this mmeformer reads '
            'versions 1, 2: rebuild it'):
        LatencyTable.load(str(old))


def test_a_table_with_v1_blocks_needs_them_all(table, v1_entries, tmp_path):
    table.meta['with_v1'] = True
    table.entries.update(v1_entries)
    path = str(tmp_path / 'v1.json')
    table.save(path)
    assert LatencyTable.load(path).with_v1
    del table.entries['v1.head:768']
    table.save(path)
    with pytest.raises(
            LatencyTableError,
            match=r'holds 41 of 42 blocks \(first missing: v1.head:768\)'):
        LatencyTable.load(path)
