"""Behaviour shared by EfficientFormer and EfficientFormerV2."""
import copy
import logging
from unittest import mock

import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmcv.cnn.bricks import DropPath
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from torch.nn.modules.batchnorm import _BatchNorm

from mmeformer.models import EfficientFormer, EfficientFormerV2
from mmeformer.models.backbones import base as backbone_base
from mmeformer.models.layers import AttentionBias

BACKBONES = [EfficientFormer, EfficientFormerV2]
#: Stage channels of every published variant and the parameters of its
#: classifier (backbone, final norm, both heads, 1000 classes).
VARIANTS = {
    (EfficientFormer, 'l1'): ([48, 96, 224, 448], 12_289_928),
    (EfficientFormer, 'l3'): ([64, 128, 320, 512], 31_406_000),
    (EfficientFormer, 'l7'): ([96, 192, 384, 768], 82_229_328),
    (EfficientFormerV2, 's0'): ([32, 48, 96, 176], 3_600_256),
    (EfficientFormerV2, 's1'): ([32, 48, 120, 224], 6_185_560),
    (EfficientFormerV2, 's2'): ([32, 64, 144, 288], 12_710_112),
    (EfficientFormerV2, 'l'): ([40, 80, 192, 384], 26_322_288),
}
#: The classifier's norm on the last stage output.
FINAL_NORMS = {
    EfficientFormer: nn.LayerNorm,
    EfficientFormerV2: nn.BatchNorm2d
}
#: Sizes of the attention-bias tables in module order, in units of the
#: last stage's token count (V2's stage-3 downsample attends to the keys of
#: stage 2, four times as many).
TABLE_SIZES = {EfficientFormer: [1], EfficientFormerV2: [1, 1, 4, 1, 1]}
SIZES = [(224, 224), (512, 512), (800, 1216), (513, 671)]


def variant_id(variant):
    return f'{variant[0].__name__}-{variant[1]}'


def expected_shapes(channels, size):
    return [(1, c, -(-size[0] // 2**(i + 2)), -(-size[1] // 2**(i + 2)))
            for i, c in enumerate(channels)]


@pytest.fixture(params=BACKBONES, ids=lambda cls: cls.__name__)
def backbone_cls(request):
    return request.param


@pytest.fixture(scope='module', params=list(VARIANTS), ids=variant_id)
def meta_model(request):
    """A published variant on the meta device: the real forward code runs,
    shapes are checked by every op, but no arithmetic is done."""
    backbone_cls, arch = request.param
    with torch.device('meta'):
        model = backbone_cls(arch, out_indices=(0, 1, 2, 3))
    return VARIANTS[request.param][0], model.eval()


@pytest.mark.parametrize('size', SIZES, ids=lambda s: f'{s[0]}x{s[1]}')
def test_output_shapes(meta_model, size):
    channels, model = meta_model
    with torch.no_grad():
        outs = model(torch.empty(1, 3, *size, device='meta'))
    assert [tuple(o.shape) for o in outs] == expected_shapes(channels, size)


#: Every variant at the classification size, one per family at an odd,
#: non-square size (the meta shape test covers the others).
FORWARD_CASES = [(variant, (224, 224))
                 for variant in VARIANTS] + [((cls, cls.default_arch),
                                              (513, 671)) for cls in BACKBONES]


@pytest.mark.parametrize(
    'variant, size',
    FORWARD_CASES,
    ids=[f'{variant_id(v)}-{s[0]}x{s[1]}' for v, s in FORWARD_CASES])
def test_forward_computes_finite_maps(variant, size):
    backbone_cls, arch = variant
    model = backbone_cls(arch, out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, *size))
    assert [tuple(o.shape)
            for o in outs] == expected_shapes(VARIANTS[variant][0], size)
    assert all(torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize('variant', list(VARIANTS), ids=variant_id)
def test_classifier_parameter_count(build_classifier, variant):
    backbone_cls, arch = variant
    with torch.device('meta'):
        model = build_classifier(backbone_cls.__name__, arch)
    assert sum(p.numel() for p in model.parameters()) == VARIANTS[variant][1]
    assert isinstance(model.backbone.norm, FINAL_NORMS[backbone_cls])


@pytest.mark.parametrize('ref_size, tokens', [(224, 49), (800, 625),
                                              (512, 256)])
def test_bias_tables_follow_the_reference_size(backbone_cls, ref_size, tokens):
    with torch.device('meta'):
        model = backbone_cls(attn_ref_size=ref_size)
    tables = [
        tuple(m.table.shape) for m in model.modules()
        if isinstance(m, AttentionBias)
    ]
    assert tables == [(8, tokens * n) for n in TABLE_SIZES[backbone_cls]]


@pytest.fixture
def tiny_arch(backbone_cls, tiny_archs):
    return tiny_archs[backbone_cls.__name__]


@pytest.mark.parametrize('out_indices, expected', [
    (-1, (3, )),
    (0, (0, )),
    ((-4, -2), (0, 2)),
    ([3, 1, -3], (1, 3)),
    ((0, 1, 2, 3), (0, 1, 2, 3)),
])
def test_out_indices(backbone_cls, tiny_arch, out_indices, expected):
    model = backbone_cls(tiny_arch, out_indices=out_indices).eval()
    assert model.out_indices == expected
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 96))
    assert [o.shape for o in outs] == [
        (1, tiny_arch['channels'][i], 16 // 2**i, 24 // 2**i) for i in expected
    ]


@pytest.mark.parametrize('out_indices', [4, -5, (0, 7), ()])
def test_bad_out_indices(backbone_cls, tiny_arch, out_indices):
    with pytest.raises(ValueError, match='out_indices'):
        backbone_cls(tiny_arch, out_indices=out_indices)


@pytest.mark.parametrize('frozen_stages', [0, 2])
def test_frozen_stages_survive_train(backbone_cls, tiny_arch, frozen_stages):
    model = backbone_cls(
        tiny_arch,
        frozen_stages=frozen_stages,
        out_indices=(0, 1, 2, 3),
        out_norm_cfg=dict(type='GN', num_groups=1))
    model.train()
    frozen = [model.stem] + [
        module for i in range(frozen_stages + 1)
        for module in (model.stages[i], model.out_norms[i])
    ]
    for module in frozen:
        assert all(not p.requires_grad for p in module.parameters())
        assert all(not m.training for m in module.modules())
    for i in range(frozen_stages + 1, 4):
        assert all(p.requires_grad for p in model.stages[i].parameters())
        assert model.stages[i].training


def test_bad_frozen_stages(backbone_cls, tiny_arch):
    with pytest.raises(ValueError, match='frozen_stages'):
        backbone_cls(tiny_arch, frozen_stages=4)


def test_norm_eval_keeps_every_batch_norm_in_eval(backbone_cls, tiny_arch):
    model = backbone_cls(tiny_arch, norm_eval=True).train()
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert norms and all(not m.training for m in norms)
    assert model.stages[3].blocks[-1].training
    assert all(m.training for m in backbone_cls(tiny_arch).train().modules())


def test_drop_path_rates_grow_linearly(backbone_cls, tiny_arch):
    model = backbone_cls(tiny_arch, drop_path_rate=0.3)
    rates = [
        block.drop_path.drop_prob for stage in model.stages
        for block in stage.blocks
    ]
    total = sum(tiny_arch['depths'])
    assert rates == pytest.approx(
        [0.3 * i / (total - 1) for i in range(total)])
    assert isinstance(model.stages[0].blocks[0].drop_path, DropPath)


def test_with_cp_gives_the_same_outputs_and_gradients(backbone_cls, tiny_arch):
    torch.manual_seed(0)
    model = backbone_cls(tiny_arch, out_indices=(0, 1, 2, 3)).train()
    model_cp = copy.deepcopy(model)
    for stage in model_cp.stages:
        stage.with_cp = True
    x = torch.rand(2, 3, 64, 64)
    outs = model(x)
    with mock.patch.object(
            backbone_base.cp, 'checkpoint',
            wraps=backbone_base.cp.checkpoint) as checkpoint:
        outs_cp = model_cp(x)
    assert checkpoint.call_count == sum(tiny_arch['depths'])
    for out, out_cp in zip(outs, outs_cp):
        torch.testing.assert_close(out_cp, out)
    sum(o.square().sum() for o in outs).backward()
    sum(o.square().sum() for o in outs_cp).backward()
    grads = dict(model.named_parameters())
    for name, param in model_cp.named_parameters():
        torch.testing.assert_close(param.grad, grads[name].grad, msg=name)
    assert backbone_cls(tiny_arch, with_cp=True).stages[2].with_cp


def test_unknown_arch_name_lists_valid_names(backbone_cls):
    with pytest.raises(ValueError) as error:
        backbone_cls('b7')
    for name in backbone_cls.arch_zoo:
        assert repr(name) in str(error.value)


def test_arch_names_are_case_insensitive(backbone_cls):
    name = next(iter(backbone_cls.arch_zoo))
    assert backbone_cls(name.upper()).depths == backbone_cls(name).depths


def test_arch_dict_missing_keys_are_listed(backbone_cls, tiny_arch):
    del tiny_arch['depths'], tiny_arch['num_attn_blocks']
    with pytest.raises(ValueError, match=r"\['depths', 'num_attn_blocks'\]"):
        backbone_cls(tiny_arch)


def test_arch_dict_needs_four_stages(backbone_cls, tiny_arch):
    tiny_arch['channels'] = tiny_arch['channels'][:3]
    with pytest.raises(ValueError, match='channels'):
        backbone_cls(tiny_arch)


@pytest.mark.parametrize('size', [(31, 64), (64, 16)])
def test_too_small_input_is_rejected(backbone_cls, tiny_arch, size):
    model = backbone_cls(tiny_arch)
    with pytest.raises(ValueError, match='at least 32x32.*resize or pad'):
        model(torch.rand(1, 3, *size))


def test_wrong_channel_count_is_rejected(backbone_cls, tiny_arch):
    # The stem's convolution names the expected and the given channels.
    with pytest.raises(RuntimeError, match='to have 3 channels, but got 1'):
        backbone_cls(tiny_arch)(torch.rand(1, 1, 64, 64))
    model = backbone_cls(tiny_arch, in_channels=1).eval()
    assert model(torch.rand(1, 1, 64, 64))[0].shape[1] == 32


def test_final_norm_needs_the_last_stage(backbone_cls, tiny_arch):
    with pytest.raises(ValueError, match='final_norm'):
        backbone_cls(tiny_arch, final_norm=True, out_indices=(0, 1))


def test_final_norm_and_out_norms_are_applied(backbone_cls, tiny_arch,
                                              randomize):
    plain = randomize(backbone_cls(tiny_arch, out_indices=(1, 3))).eval()
    normed = backbone_cls(
        tiny_arch,
        out_indices=(1, 3),
        final_norm=True,
        out_norm_cfg=dict(type='GN', num_groups=1)).eval()
    normed.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():
        randomize(normed.norm, seed=1)
        nn.init.normal_(normed.norm.weight)
        x = torch.rand(1, 3, 64, 64)
        (raw1, raw3), (out1, out3) = plain(x), normed(x)
        torch.testing.assert_close(out1, normed.out_norms[1](raw1))
        torch.testing.assert_close(out3,
                                   normed.out_norms[3](normed.norm(raw3)))
    assert isinstance(normed.out_norms[0], nn.Identity)
    assert isinstance(normed.out_norms[1], nn.GroupNorm)


def test_layer_depth(backbone_cls, tiny_arch):
    model = backbone_cls(tiny_arch, final_norm=True)
    total = sum(tiny_arch['depths'])
    depth = model.get_layer_depth
    stem = depth('backbone.stem.conv1.conv.weight', 'backbone.')
    assert stem == (0, total + 2)
    assert depth('stages.0.blocks.0.ls2.weight') == (1, total + 2)
    assert depth('stages.1.downsample.conv.conv.weight')[0] == 2
    assert depth('stages.2.blocks.1.mlp.fc1.conv.weight')[0] == 4
    assert depth('stages.3.blocks.1.mlp.fc2.conv.bias')[0] == total
    assert depth('norm.weight')[0] == total + 1
    assert depth('head.head.weight', 'backbone.')[0] == total + 1
    for name, _ in model.named_parameters():
        assert 0 <= depth(name)[0] <= total + 1


def test_layer_decay_optimizer_accepts_the_classifier(build_classifier,
                                                      tiny_archs):
    from mmpretrain.engine.optimizers import \
        LearningRateDecayOptimWrapperConstructor
    model = build_classifier(
        'EfficientFormerV2', tiny_archs['EfficientFormerV2'], num_classes=5)
    constructor = LearningRateDecayOptimWrapperConstructor(
        dict(
            type='OptimWrapper',
            optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05)),
        paramwise_cfg=dict(layer_decay_rate=0.5))
    groups = constructor(model).optimizer.param_groups
    scales = {g['param_name']: g['lr_scale'] for g in groups}
    assert scales['backbone.stem.conv1.conv.weight'] == pytest.approx(0.5**7)
    assert scales['head.head.weight'] == 1.0


def test_switch_to_deploy_matches_the_unfused_model(backbone_cls, tiny_arch,
                                                    randomize):
    model = randomize(
        backbone_cls(tiny_arch, out_indices=(0, 1, 2, 3),
                     final_norm=True)).eval()
    units = [
        name for name, m in model.named_modules() if isinstance(m, ConvModule)
    ]
    fused = copy.deepcopy(model)
    report = fused.switch_to_deploy()
    assert report.fused == [f'{name}.conv <- {name}.bn' for name in units]
    assert all(
        isinstance(m.bn, nn.Identity) for m in fused.modules()
        if isinstance(m, ConvModule))
    left = [n for n, m in fused.named_modules() if isinstance(m, _BatchNorm)]
    assert report.unfused == left
    assert left == (['norm'] if backbone_cls is EfficientFormerV2 else [])
    x = torch.rand(1, 3, 97, 75)
    with torch.no_grad():
        for out, ref in zip(fused(x), model(x)):
            torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    assert fused.switch_to_deploy().fused == []


def test_every_parameter_gets_a_gradient(backbone_cls, tiny_arch):
    model = backbone_cls(
        tiny_arch,
        out_indices=(0, 1, 2, 3),
        final_norm=True,
        out_norm_cfg=dict(type='GN', num_groups=1)).train()
    outs = model(torch.rand(2, 3, 64, 80))
    sum((o * torch.randn_like(o)).sum() for o in outs).backward()
    no_grad = [
        name for name, p in model.named_parameters()
        if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert no_grad == []


def test_index_buffers_are_not_in_the_state_dict(backbone_cls, tiny_arch):
    model = backbone_cls(tiny_arch)
    keys = list(model.state_dict())
    assert any(k.endswith('attn_bias.table') for k in keys)
    assert not any('index' in k for k in keys)
    assert any(
        name.endswith('attn_bias.index') for name, _ in model.named_buffers())


def test_bias_cache_always_matches_uncached_outputs(backbone_cls, tiny_arch,
                                                    randomize):
    model = randomize(backbone_cls(tiny_arch, out_indices=(2, 3)))
    biases = [m for m in model.modules() if isinstance(m, AttentionBias)]

    def check(dtype=torch.float32):
        model.eval()
        for size in [(64, 64), (96, 64)]:
            x = torch.rand(1, 3, *size, dtype=dtype)
            with torch.no_grad():
                cached = model(x)
                cached_again = model(x)
            with torch.enable_grad():
                uncached = model(x)
            for a, b, c in zip(cached, cached_again, uncached):
                assert a.dtype == dtype
                torch.testing.assert_close(a, c.detach(), rtol=0, atol=0)
                torch.testing.assert_close(b, c.detach(), rtol=0, atol=0)
        assert all(len(b._cache) == 2 for b in biases)

    check()
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    sum(o.mean() for o in model(torch.rand(2, 3, 64, 64))).backward()
    optimizer.step()
    assert not any(b._cache for b in biases)
    check()
    fresh = randomize(backbone_cls(tiny_arch, out_indices=(2, 3)), seed=3)
    model.load_state_dict(fresh.state_dict())
    assert not any(b._cache for b in biases)
    check()
    model.double()
    assert not any(b._cache for b in biases)
    check(torch.float64)


@pytest.mark.parametrize('scope, registry', [
    ('mmpretrain', 'mmpretrain.registry'),
    ('mmdet', 'mmdet.registry'),
    ('mmseg', 'mmseg.registry'),
])
def test_build_from_every_host_scope(backbone_cls, tiny_arch, scope, registry):
    host_models = __import__(registry, fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = host_models.build(
            dict(
                type=f'mmeformer.{backbone_cls.__name__}',
                arch=tiny_arch,
                out_indices=(0, 1, 2, 3)))
    assert type(model) is backbone_cls
    assert len(model.eval()(torch.rand(1, 3, 64, 64))) == 4


def test_pretrained_init_cfg_with_prefix(backbone_cls, tiny_arch, tmp_path,
                                         randomize):
    source = randomize(backbone_cls(tiny_arch))
    checkpoint = tmp_path / 'classifier.pth'
    torch.save(
        {
            'state_dict': {
                f'backbone.{k}': v
                for k, v in source.state_dict().items()
            }
        }, checkpoint)
    model = backbone_cls(
        tiny_arch,
        init_cfg=dict(
            type='Pretrained', checkpoint=str(checkpoint), prefix='backbone.'))
    model.init_weights()
    loaded = model.state_dict()
    for key, value in source.state_dict().items():
        assert torch.equal(loaded[key], value), key


def test_attn_ref_size_sets_per_axis_grids(backbone_cls, tiny_arch):
    model = backbone_cls(tiny_arch, attn_ref_size=(512, 1000))
    assert model.stage_grid(3) == (16, 32)
    last = model.stages[3].blocks[-1].token_mixer.attn_bias
    assert last.key_grid == (16, 32) and last.table.shape == (8, 512)
    with pytest.raises(ValueError, match='attn_ref_size'):
        backbone_cls(tiny_arch, attn_ref_size=16)


def test_empty_batch_gives_empty_maps(backbone_cls, tiny_arch):
    model = backbone_cls(tiny_arch, out_indices=(0, 1, 2, 3)).eval()
    outs = model(torch.rand(0, 3, 65, 96))
    assert [tuple(o.shape) for o in outs
            ] == [(0, channels, -(-65 // 2**(i + 2)), 96 // 2**(i + 2))
                  for i, channels in enumerate(tiny_arch['channels'])]


@pytest.mark.parametrize('out_indices', ['0', 1.0, [0, '1'], True])
def test_out_indices_of_another_type_are_refused(backbone_cls, tiny_arch,
                                                 out_indices):
    with pytest.raises(TypeError, match='out_indices must be a stage index'):
        backbone_cls(tiny_arch, out_indices=out_indices)


@pytest.mark.parametrize('size, grid', [('800x1333', (800, 1333)),
                                        ('512', (512, 512)),
                                        ([640, 480], (640, 480))])
def test_attn_ref_size_spellings(backbone_cls, tiny_arch, size, grid):
    assert backbone_cls(tiny_arch, attn_ref_size=size).ref_size == grid


def test_unreadable_attn_ref_size_is_named(backbone_cls, tiny_arch):
    with pytest.raises(ValueError, match=r"attn_ref_size must be .*'big'"):
        backbone_cls(tiny_arch, attn_ref_size='big')


@pytest.fixture
def log_lines():
    """Messages logged through mmengine's current logger during a test."""
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def _save_classifier(backbone, path):
    """Save ``backbone`` as the backbone of a classifier file."""
    torch.save(
        dict(
            meta=dict(attn_ref_size=list(backbone.ref_size)),
            state_dict={
                f'backbone.{k}': v
                for k, v in backbone.state_dict().items()
            }), path)


def test_dense_start_from_a_classifier_is_one_line(backbone_cls, tiny_arch,
                                                   tmp_path, randomize,
                                                   log_lines):
    classifier = randomize(backbone_cls(tiny_arch, final_norm=True))
    checkpoint = str(tmp_path / 'classifier.pth')
    _save_classifier(classifier, checkpoint)
    dense = backbone_cls(
        tiny_arch,
        out_indices=(0, 1, 2, 3),
        attn_ref_size=512,
        out_norm_cfg=dict(type='GN', num_groups=1),
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.'))
    dense.init_weights()

    tables = [k for k in dense.state_dict() if k.endswith('attn_bias.table')]
    assert tables
    loaded = dense.state_dict()
    for key, value in classifier.state_dict().items():
        if key in tables:
            assert not loaded[key].any(), key
        elif not key.startswith('norm.'):
            assert torch.equal(loaded[key], value), key
    assert not any('mismatch' in line or 'missing keys' in line
                   or 'unexpected key' in line for line in log_lines)
    summary = [line for line in log_lines if 'start at zero' in line]
    assert len(summary) == 1
    assert (f'{len(tables)} attention-bias tables of {checkpoint} were '
            'learned for 224x224 inputs and start at zero for '
            'attn_ref_size 512x512') in summary[0]
    assert 'final norm (norm.*) is not used' in summary[0]
    assert '--attn-ref-size 512' in summary[0]


def test_a_real_mismatch_at_init_stays_loud(backbone_cls, tiny_arch, tmp_path,
                                            log_lines):
    other = copy.deepcopy(tiny_arch)
    other['channels'] = [c * 2 for c in other['channels']]
    checkpoint = str(tmp_path / 'other.pth')
    _save_classifier(backbone_cls(other, final_norm=True), checkpoint)
    dense = backbone_cls(
        tiny_arch,
        attn_ref_size=512,
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.'))
    dense.init_weights()
    assert any('size mismatch' in line for line in log_lines)
    assert not any('start at zero' in line for line in log_lines)


def test_out_channels_follow_out_indices(backbone_cls, tiny_arch):
    model = backbone_cls(tiny_arch, out_indices=(1, 3))
    channels = tiny_arch['channels']
    assert model.out_channels == [channels[1], channels[3]]
