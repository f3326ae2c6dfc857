"""Every source layout of every variant converts and loads strictly."""
import filecmp
import hashlib
from collections import Counter

import pytest
import torch
from checkpoint_sources import (V1_ARCHS, V2_ARCHS, build_from_config,
                                offset_table, random_tensors)
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint_with_prefix
from safetensors.torch import save_file
from tensor_origins import CASES, wrong_origins

from mmeformer.converters import convert_checkpoint
from mmeformer.converters.bias import resize_table

# Loading into the meta-device models of the configs: copies are no-ops.
pytestmark = pytest.mark.filterwarnings(
    'ignore:.*copying from a non-meta parameter')

CLASSIFIER_SOURCES = ('official', 'timm')
DENSE_SOURCES = {'official-det': 'detection', 'official-seg': 'segmentation'}
COCO_CLASSES = ('person', 'bicycle')


def fingerprints(tensors):
    """Multiset of tensor contents, independent of names and shapes."""
    return Counter(
        hashlib.sha1(t.contiguous().numpy().tobytes()).hexdigest()
        for t in tensors)


def converted(path):
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.fixture(scope='module', params=V1_ARCHS + V2_ARCHS)
def arch(request):
    return request.param


@pytest.fixture(scope='module')
def classifier(arch):
    return build_from_config('classification', arch)


@pytest.fixture(scope='module')
def dense_models(arch):
    """Detector and segmentor of ``arch``, each built on first use."""
    built = {}

    def get(task):
        if task not in built:
            built[task] = build_from_config(task, arch)
        return built[task]

    return get


def check_classifier(arch, source, classifier, source_shapes, tmp_path):
    tensors = random_tensors(source_shapes(source, arch))
    container = {'official': 'model', 'mmpretrain': 'state_dict'}
    src = tmp_path / 'src.pth'
    torch.save(
        {container[source]: tensors} if source in container else tensors, src)
    out = tmp_path / 'out.pth'

    report = convert_checkpoint(str(src), source, out=str(out))

    assert report.variant.arch == arch
    written = load_checkpoint(
        classifier, str(out), map_location='cpu', strict=True)
    if (source, arch) in CASES:
        assert not wrong_origins(source, arch, tensors, written['state_dict'])
    assert written['meta']['variant'] == report.variant.name
    assert written['meta']['attn_ref_size'] == [224, 224]
    # Every tensor but the index buffers arrives, each exactly once.
    kept = [t for k, t in tensors.items() if 'attention_bias_idxs' not in k]
    assert fingerprints(written['state_dict'].values()) == fingerprints(kept)
    assert report.num_mapped == len(kept) == len(written['state_dict'])


@pytest.mark.parametrize('source', CLASSIFIER_SOURCES)
def test_classifier(arch, source, classifier, source_shapes, tmp_path):
    check_classifier(arch, source, classifier, source_shapes, tmp_path)


@pytest.mark.parametrize('arch', V1_ARCHS, indirect=True)
def test_classifier_mmpretrain(arch, classifier, source_shapes, tmp_path):
    check_classifier(arch, 'mmpretrain', classifier, source_shapes, tmp_path)


@pytest.mark.parametrize('source', DENSE_SOURCES)
def test_dense(arch, source, dense_models, source_shapes, tmp_path):
    model = dense_models(DENSE_SOURCES[source])
    shapes = source_shapes(source, arch)
    shapes.update((k, tuple(v.shape)) for k, v in model.state_dict().items()
                  if not k.startswith('backbone.'))
    tensors = random_tensors(shapes, seed=1)
    src = tmp_path / 'src.pth'
    torch.save(
        dict(state_dict=tensors, meta=dict(CLASSES=COCO_CLASSES, epoch=12)),
        src)
    out = tmp_path / 'out.pth'

    report = convert_checkpoint(str(src), source, out=str(out))

    assert report.variant.arch == arch
    written = load_checkpoint(model, str(out), map_location='cpu', strict=True)
    if (source, arch) in CASES:
        assert not wrong_origins(source, arch, tensors, written['state_dict'])
    assert written['meta']['dataset_meta'] == dict(classes=COCO_CLASSES)
    assert written['meta']['attn_ref_size'] == [model.backbone.ref_size[0]] * 2
    # Trained dense tables are kept; the ImageNet-named placeholders and the
    # index buffers are dropped.
    kept = [
        t for k, t in tensors.items()
        if not k.endswith(('attention_biases', 'attention_bias_idxs',
                           'attention_bias_idxs_seg'))
    ]
    assert fingerprints(written['state_dict'].values()) == fingerprints(kept)


def test_every_origin_case_is_converted_above():
    """A case of tensor_origins.CASES that the tests above do not convert
    (a misspelt source or arch) would check nothing."""
    archs = V1_ARCHS + V2_ARCHS
    converted = {(source, arch)
                 for source in CLASSIFIER_SOURCES + tuple(DENSE_SOURCES)
                 for arch in archs}
    converted |= {('mmpretrain', arch) for arch in V1_ARCHS}
    assert set(CASES) <= converted, set(CASES) - converted


@pytest.mark.parametrize('arch', ['l1', 's0'], indirect=True)
@pytest.mark.parametrize('mode', ['zero', 'resize'])
def test_classifier_to_dense_backbone(arch, mode, dense_models, source_shapes,
                                      tmp_path):
    """A dense-ready classifier file fits the dense backbone's tables."""
    tensors = random_tensors(source_shapes('official', arch))
    src = tmp_path / 'src.pth'
    torch.save(dict(model=tensors), src)
    out = tmp_path / 'out.pth'
    backbone = dense_models('detection').backbone

    report = convert_checkpoint(
        str(src), 'official', out=str(out), attn_ref_size=800, dense_bias=mode)

    assert any('7x7 -> 25x25' in line for line in report.bias)
    # What init_cfg=dict(type='Pretrained', prefix='backbone.') loads.
    loaded = _load_checkpoint_with_prefix('backbone.', str(out), 'cpu')
    expected = backbone.state_dict()
    assert {k: tuple(v.shape) for k, v in loaded.items() if k in expected} \
        == {k: tuple(expected[k].shape) for k in loaded if k in expected}
    assert {k.split('.')[0] for k in set(expected) - set(loaded)} <= \
        {'out_norms'}
    assert {k.split('.')[0] for k in set(loaded) - set(expected)} == {'norm'}
    # The first attention block of the last stage in both variants.
    name = 'stages.3.blocks.3.token_mixer.attn_bias.table'
    source_name = ('network.6.4.token_mixer.attention_biases' if arch == 'l1'
                   else 'network.6.3.token_mixer.attention_biases')
    if mode == 'zero':
        assert not loaded[name].any()
    else:
        assert torch.equal(
            loaded[name], resize_table(tensors[source_name], (7, 7), (25, 25)))


def test_dense_bias_resize_on_a_non_square_grid(source_shapes, tmp_path):
    """At 96x128 the 7x7 offsets of V2-S0's attention blocks become 3x4:
    rows dy 0, 3, 6 and columns dx 0, 2, 4, 6 of each block's own table."""
    tensors = random_tensors(source_shapes('official', 's0'))
    blocks = {
        'network.4.4.': 'stages.2.blocks.4.',
        'network.4.5.': 'stages.2.blocks.5.',
        'network.6.2.': 'stages.3.blocks.2.',
        'network.6.3.': 'stages.3.blocks.3.',
    }
    for base, source in enumerate(blocks, 1):
        tensors[source + 'token_mixer.attention_biases'] = offset_table(
            8, (7, 7), base=1000 * base)
    src = tmp_path / 'src.pth'
    torch.save(dict(model=tensors), src)
    out = tmp_path / 'out.pth'

    convert_checkpoint(
        str(src),
        'official',
        out=str(out),
        attn_ref_size='96x128',
        dense_bias='resize')

    written = converted(out)
    assert written['meta']['attn_ref_size'] == [96, 128]
    for base, target in enumerate(blocks.values(), 1):
        table = written['state_dict'][
            f'backbone.{target}token_mixer.attn_bias.table']
        assert table.tolist() == [[
            1000 * base + 100 * n + 10 * dy + dx for dy in (0, 3, 6)
            for dx in (0, 2, 4, 6)
        ] for n in range(8)], target


def test_converting_twice_is_byte_identical(source_shapes, tmp_path):
    src = tmp_path / 'eformer_s0_450.pth'
    torch.save(
        dict(model=random_tensors(source_shapes('official', 's0'))), src)
    first, second = tmp_path / 'first.pth', tmp_path / 'second.pth'
    convert_checkpoint(str(src), 'official', out=str(first))
    convert_checkpoint(str(src), 'official', out=str(second))
    assert filecmp.cmp(first, second, shallow=False)


def test_default_output_path(source_shapes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save(
        dict(model=random_tensors(source_shapes('official', 's0'))),
        'eformer_s0_450.pth')
    report = convert_checkpoint('eformer_s0_450.pth', 'official')
    assert report.out == 'checkpoints/efficientformerv2_s0_in1k.pth'
    report = convert_checkpoint(
        'eformer_s0_450.pth',
        'official',
        attn_ref_size='512x640',
        dense_bias='resize')
    assert report.out == \
        'checkpoints/efficientformerv2_s0_in1k_ref512x640_resize.pth'
    assert (tmp_path / report.out).is_file()


def test_timm_safetensors(source_shapes, tmp_path):
    tensors = random_tensors(source_shapes('timm', 's0'))
    src = tmp_path / 'model.safetensors'
    save_file(tensors, str(src))
    out = tmp_path / 'out.pth'
    report = convert_checkpoint(str(src), 'timm', out=str(out))
    assert report.variant.name == 'efficientformerv2_s0'
    assert fingerprints(converted(out)['state_dict'].values()) == \
        fingerprints(tensors.values())
