"""tools/search.py's checks, before any data are read: the table's size and
space, the checkpoint's space, a budget no subnet meets."""
import json

import pytest
import torch
from mmengine.config import Config

from mmeformer.latency import LatencyTable, space_blocks, table_meta
from mmeformer.models.backbones import EfficientFormerV2Space
from mmeformer.runtime import CheckpointError, ConfigError
from mmeformer.search import BudgetError
from mmeformer.search.session import SearchSession


@pytest.fixture
def files(tmp_path, supernet_cfg, build_supernet_classifier):
    config = tmp_path / 'supernet.py'
    config.write_text(
        "custom_imports = dict(imports=['mmeformer.search'])\n"
        f'model = {supernet_cfg!r}\n'
        'search = dict(input_size=33)\n'
        "train_dataloader = dict(dataset=dict(data_root='missing'))\n")
    cfg = Config.fromfile(str(config))
    space = EfficientFormerV2Space.from_dict(supernet_cfg['backbone']['space'])

    def table(path, space=space, size=33):
        meta = table_meta(space, 'torch', 'fp32', size, threads=1)
        entries = {b.key: 0.5 for b in space_blocks(space, False)}
        LatencyTable(meta, entries).save(str(path))
        return str(path)

    ckpt = tmp_path / 'supernet.pth'
    state_dict = build_supernet_classifier().state_dict()
    torch.save(dict(state_dict=state_dict), ckpt)
    return cfg, table, str(ckpt), tmp_path


def session(cfg, ckpt, table, tmp_path, **kwargs):
    kwargs.setdefault('max_latency', 100.)
    kwargs.setdefault('max_params', None)
    return SearchSession(
        cfg,
        ckpt,
        table,
        work_dir=str(tmp_path / 'w'),
        log=lambda line: None,
        **kwargs)


def test_a_table_of_another_size_or_space_is_refused(files):
    cfg, table, ckpt, tmp_path = files
    with pytest.raises(ConfigError, match='input_size 40x40, not 33x33'):
        session(cfg, ckpt, table(tmp_path / 'a.json', size=40), tmp_path)
    other = EfficientFormerV2Space.from_dict(
        dict(cfg.model.backbone.space, mlp_ratios=[1, 2]))
    with pytest.raises(ConfigError, match='space_fingerprint'):
        session(cfg, ckpt, table(tmp_path / 'b.json', space=other), tmp_path)
    with pytest.raises(ConfigError, match='runtime'):
        session(
            cfg,
            ckpt,
            table(tmp_path / 'c.json'),
            tmp_path,
            runtime='onnxruntime')


def test_a_checkpoint_of_another_space_is_refused(files):
    cfg, table, ckpt, tmp_path = files
    data = torch.load(ckpt)
    data['state_dict']['backbone.space_fingerprint'] = torch.tensor(
        list(b'0123456789ab'), dtype=torch.uint8)
    torch.save(data, ckpt)
    with pytest.raises(CheckpointError, match='another search space'):
        session(cfg, ckpt, table(tmp_path / 't.json'), tmp_path)


def test_a_budget_below_the_smallest_subnet_is_named(files):
    cfg, table, ckpt, tmp_path = files
    search = session(
        cfg,
        ckpt,
        table(tmp_path / 't.json'),
        tmp_path,
        max_latency=1.,
        max_params=0.001)
    with pytest.raises(BudgetError) as error:
        search.run()
    smallest = search.latency(search.space.smallest())
    assert f'smallest reachable is {smallest:.3f} ms' in str(error.value)
    assert 'latency 1 ms and the size 0.001 M' in str(error.value)
    assert not (tmp_path / 'w').exists()


def test_evolution_settings_are_checked_before_any_data(files):
    cfg, table, ckpt, tmp_path = files
    cfg.search.evolution = dict(population=0)
    search = session(cfg, ckpt, table(tmp_path / 't.json'), tmp_path)
    with pytest.raises(ConfigError, match='search.evolution: .*>= 1'):
        search.run(strategy='evolution')
    cfg.search.evolution = dict(populations=3)
    with pytest.raises(ConfigError, match='populations'):
        search.run(strategy='evolution')
    with pytest.raises(ConfigError, match="--strategy 'random'"):
        search.run(strategy='random')
    assert not (tmp_path / 'w').exists()


def test_a_table_of_another_device_is_searched_on_its_predictions(files):
    """A table made on the target device (not this machine) is refused
    unless --device names it; then nothing is measured here."""
    cfg, table, ckpt, tmp_path = files
    path = table(tmp_path / 'phone.json')
    data = json.load(open(path))
    data['meta']['device'] = 'Phone CPU'
    json.dump(data, open(path, 'w'))
    with pytest.raises(ConfigError, match='device'):
        session(cfg, ckpt, path, tmp_path)
    search = session(cfg, ckpt, path, tmp_path, device='Phone CPU')
    assert not search.measurable and not search.measure_budget
    here = session(cfg, ckpt, table(tmp_path / 'here.json'), tmp_path)
    assert here.measurable and here.measure_budget
    assert not session(
        cfg,
        ckpt,
        table(tmp_path / 'here.json'),
        tmp_path,
        measure_budget=False).measure_budget
