"""Every model-zoo config parses, builds in its host and trains / predicts.

The models are the configured ones, at full size; only the inputs are tiny
(one small image), so each config costs one build, one training forward
(a full optimizer step for the smallest variants) and one inference. The
settings that make a config "official" (drop path, weight decay, schedule,
batch size, attention reference size) are checked against the published
recipes (efficientformer.md, sections 1 and 3).
"""
import copy
import functools
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS

import mmeformer  # noqa: F401
from mmeformer.runtime import get_host

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TASKS = ('classification', 'detection', 'segmentation')
CONFIGS = sorted(
    osp.relpath(path, osp.join(REPO, 'configs')) for task in TASKS
    for path in glob.glob(osp.join(REPO, 'configs', task, '*.py')))

ARCHS = ('l1', 'l3', 'l7', 's0', 's1', 's2', 'l')
#: Drop path per variant, ImageNet and dense alike (efficientformer.md 1).
DROP_PATH = dict(l1=0., l3=0., l7=0., s0=0., s1=0., s2=0.02, l=0.1)
#: Channels of the four stages.
CHANNELS = dict(
    l1=[48, 96, 224, 448],
    l3=[64, 128, 320, 512],
    l7=[96, 192, 384, 768],
    s0=[32, 48, 96, 176],
    s1=[32, 48, 120, 224],
    s2=[32, 64, 144, 288],
    l=[40, 80, 192, 384])
HOST_OF_TASK = dict(
    classification='mmpretrain', detection='mmdet', segmentation='mmseg')
#: Images per GPU of the 8-GPU official runs.
BATCH_PER_GPU = dict(classification=128, detection=2, segmentation=4)


@functools.lru_cache(maxsize=None)
def _parse(config: str) -> Config:
    return Config.fromfile(osp.join(REPO, 'configs', config))


def parse(config: str) -> Config:
    """A fresh copy of the parsed config (parsing the bases is slow)."""
    return copy.deepcopy(_parse(config))


def arch_of(config: str) -> str:
    """'detection/maskrcnn_eformerv2_s0_coco.py' -> 's0'."""
    return re.search(r'eformer(?:v2)?_([a-z0-9]+)_', config).group(1)


def is_v2(config: str) -> bool:
    return 'eformerv2_' in config


def task_of(config: str) -> str:
    return config.split('/')[0]


def test_the_zoo_is_complete():
    expected = []
    for arch in ARCHS:
        family = 'eformer' if arch in ('l1', 'l3', 'l7') else 'eformerv2'
        expected += [
            f'classification/{family}_{arch}_in1k.py',
            f'classification/{family}_{arch}_no-teacher_in1k.py',
            f'detection/maskrcnn_{family}_{arch}_coco.py',
            f'segmentation/fpn_{family}_{arch}_ade20k_40k.py',
        ]
        if family == 'eformerv2':
            expected.append(f'classification/{family}_{arch}_300e_in1k.py')
    expected.append('classification/eformer_l1_1000e_in1k.py')
    assert CONFIGS == sorted(expected)


def epochs_of(config: str) -> int:
    """The published schedule: 300 (V1) or 450 (V2) epochs unless named."""
    match = re.search(r'_(\d+)e_', config)
    if match:
        return int(match.group(1))
    return 450 if is_v2(config) else 300


def has_teacher(config: str) -> bool:
    return task_of(config) == 'classification' and ('_no-teacher_'
                                                    not in config)


def _strings(node, where='cfg'):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f'{where}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _strings(value, f'{where}[{i}]')
    elif isinstance(node, str):
        yield where, node


@pytest.mark.parametrize('config', CONFIGS)
def test_official_settings(config):
    cfg = parse(config)
    task, arch = task_of(config), arch_of(config)
    assert get_host(cfg).scope == HOST_OF_TASK[task]
    assert cfg.custom_imports == dict(
        imports=['mmeformer'], allow_failed_imports=False)
    # Fault tolerance (mmeformer/engine/hooks) with the host's intervals.
    hooks = cfg.default_hooks
    assert (hooks.checkpoint.type, hooks.resume_fallback.type,
            hooks.random_state.type) == ('mmeformer.AtomicCheckpointHook',
                                         'mmeformer.ResumeFallbackHook',
                                         'mmeformer.RandomStateHook')
    assert hooks.checkpoint.interval == (4000 if task == 'segmentation' else 1)
    with open(osp.join(REPO, 'configs', config)) as f:
        assert f.readline().startswith('# '), 'first lines: its origin'

    # Nothing may be downloaded at run time (the hosts' bases would).
    remote = [(k, v) for k, v in _strings(cfg.model) if '://' in v]
    assert not remote
    assert cfg.model.get('pretrained') is None

    backbone = cfg.model.backbone
    family = 'EfficientFormerV2' if is_v2(config) else 'EfficientFormer'
    assert backbone.type == f'mmeformer.{family}'
    assert backbone.arch == arch
    assert backbone.drop_path_rate == DROP_PATH[arch]
    assert cfg.train_dataloader.batch_size == BATCH_PER_GPU[task]
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'AdamW'

    if task == 'classification':
        assert backbone.final_norm
        assert cfg.model.head.in_channels == CHANNELS[arch][-1]
        assert (optimizer.lr, optimizer.weight_decay) == (1e-3, 0.025)
        assert cfg.auto_scale_lr.base_batch_size == 1024
        assert cfg.train_cfg.max_epochs == epochs_of(config)
        assert cfg.param_scheduler[0].end == 5
        assert cfg.model.head.loss.label_smooth_val == 0.1
        # The rest of the official recipe (main.py defaults).
        assert cfg.model.type == 'mmeformer.DistillationImageClassifier'
        assert cfg.model.head.distillation
        if has_teacher(config):
            assert cfg.model.teacher == dict(
                type='TimmClassifier',
                model_name='regnety_160',
                num_classes=1000,
                init_cfg=dict(
                    type='Pretrained',
                    checkpoint='checkpoints/regnety_160_deit_in1k.pth'))
        else:
            assert cfg.model.teacher is None
        assert (cfg.model.distillation_type, cfg.model.distillation_alpha,
                cfg.model.distillation_tau) == ('hard', 0.5, 1.0)
        sampler = cfg.train_dataloader.sampler
        assert (sampler.type, sampler.shuffle,
                sampler.num_repeats) == ('RepeatAugSampler', True, 3)
        assert cfg.optim_wrapper.constructor == (
            'mmeformer.AGCOptimWrapperConstructor')
        clip_grad = dict(type='agc', clip_factor=0.01)
        if is_v2(config):
            # Per-channel units for the flat layer scales, as timm makes of
            # the official (C, 1, 1) ones.
            clip_grad['elementwise_keys'] = ['.ls1.weight', '.ls2.weight']
        assert cfg.optim_wrapper.clip_grad == clip_grad
        assert cfg.sync_bn == 'torch'
        return

    assert cfg.optim_wrapper.get('clip_grad') is None

    ckpt_name = ('efficientformerv2'
                 if is_v2(config) else 'efficientformer') + f'_{arch}_in1k.pth'
    assert backbone.init_cfg == dict(
        type='Pretrained',
        checkpoint=f'checkpoints/{ckpt_name}',
        prefix='backbone.')
    assert tuple(backbone.out_indices) == (0, 1, 2, 3)
    assert cfg.model.neck.in_channels == CHANNELS[arch]
    if is_v2(config):
        assert backbone.out_norm_cfg is None
        assert cfg.sync_bn == 'torch'
    else:
        assert backbone.out_norm_cfg == dict(type='GN', num_groups=1)
    # The official L7 dense backbone starts its layer scales at 1e-6.
    assert backbone.get('layer_scale_init_value',
                        1e-5) == (1e-6 if arch == 'l7' else 1e-5)
    assert optimizer.lr == 2e-4
    if task == 'detection':
        assert backbone.attn_ref_size == 800
        assert optimizer.weight_decay == (0.05 if is_v2(config) else 1e-4)
        assert cfg.train_cfg.max_epochs == 12
        assert cfg.param_scheduler[0].end == 500
        assert cfg.param_scheduler[1].milestones == [8, 11]
        assert cfg.auto_scale_lr.base_batch_size == 16
        assert cfg.model.data_preprocessor.pad_size_divisor == 32
    else:
        assert backbone.attn_ref_size == 512
        assert optimizer.weight_decay == 1e-4
        assert cfg.param_scheduler[0].eta_min == (1e-6
                                                  if is_v2(config) else 0.)
        assert cfg.param_scheduler[0].power == 0.9
        assert cfg.train_cfg.max_iters == 40000
        assert cfg.train_cfg.val_interval == 4000
        assert cfg.auto_scale_lr.base_batch_size == 32
        assert cfg.model.neck.num_outs == 4
        assert cfg.model.decode_head.channels == 128
        assert cfg.model.decode_head.num_classes == 150
        for loader in ('val_dataloader', 'test_dataloader'):
            types = [t.type for t in cfg[loader].dataset.pipeline]
            assert 'ResizeToMultiple' in types, loader


def tiny_batch(task: str) -> dict:
    """One small image with annotations in the host's format."""
    torch.manual_seed(0)
    if task == 'classification':
        from mmpretrain.structures import DataSample
        return dict(
            inputs=[torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)],
            data_samples=[DataSample().set_gt_label(3)])
    if task == 'detection':
        from mmdet.testing import demo_mm_inputs
        return demo_mm_inputs(
            batch_size=1,
            image_shapes=(3, 128, 128),
            num_items=[2],
            num_classes=80,
            with_mask=True)
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    sample = SegDataSample(
        metainfo=dict(img_shape=(64, 96), ori_shape=(64, 96)))
    sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, 64, 96)))
    return dict(
        inputs=[torch.randint(0, 256, (3, 64, 96), dtype=torch.uint8)],
        data_samples=[sample])


@pytest.fixture(scope='module', params=CONFIGS)
def built(request):
    """``(config, cfg, model)``, built once per config for the tests below.

    Module scope with parameters makes pytest run all tests of one config
    before building the next, so one model is alive at a time.
    """
    config = request.param
    cfg = parse(config)
    get_host(cfg).register_modules()
    if task_of(config) == 'detection':
        # An untrained detector keeps up to 1000 proposals and 100 masks.
        cfg.model.test_cfg.rpn.max_per_img = 50
        cfg.model.test_cfg.rcnn.max_per_img = 5
    if task_of(config) == 'segmentation':
        # Training batches are padded to this size: 512x512 crops.
        cfg.model.data_preprocessor.size = (64, 96)
    if has_teacher(config):
        # The teacher's weights are not here: its architecture, random.
        cfg.model.teacher.init_cfg = None
    # As the Runner does: a top-level data_preprocessor joins the model,
    # and SyncBatchNorm runs as BatchNorm when not distributed.
    if cfg.get('data_preprocessor') is not None:
        cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    yield config, cfg, model


def test_loss_step(built):
    """The training forward: losses from the model in train mode.

    A complete optimizer step (backward, then AdamW with the config's
    parameter-wise settings and gradient clipping) runs for the smallest
    variant of each family; the larger ones share its code and would only
    add minutes. The classification configs distil from a randomly
    initialised teacher of the configured architecture.
    """
    config, cfg, model = built
    model.train()
    batch = tiny_batch(task_of(config))
    optim_wrapper = build_optim_wrapper(model,
                                        copy.deepcopy(cfg.optim_wrapper))
    if arch_of(config) not in ('l1', 's0'):
        with torch.no_grad():
            losses = model(**model.data_preprocessor(batch, True), mode='loss')
        loss, log_vars = model.parse_losses(losses)
        assert torch.isfinite(loss)
    else:
        before = [p.detach().clone() for p in model.backbone.parameters()]
        log_vars = model.train_step(batch, optim_wrapper)
        assert torch.isfinite(log_vars['loss'])
        changed = sum(not torch.equal(b, p.detach())
                      for b, p in zip(before, model.backbone.parameters()))
        assert changed > 0, 'the backbone received no update'
    if has_teacher(config):
        assert {'loss_cls', 'loss_distill'} <= set(log_vars)


def test_predict_step(built):
    config, _, model = built
    task = task_of(config)
    model.eval()
    with torch.no_grad():
        sample, = model.test_step(tiny_batch(task))
    if task == 'classification':
        assert sample.pred_score.shape == (1000, )
        assert torch.allclose(sample.pred_score.sum(), torch.tensor(1.))
    elif task == 'detection':
        pred = sample.pred_instances
        assert pred.bboxes.shape[1] == 4
        assert len(pred.masks) == len(pred.bboxes) <= 5
        if len(pred.masks):
            assert tuple(pred.masks.shape[1:]) == sample.ori_shape
    else:
        assert tuple(sample.pred_sem_seg.data.shape) == (1, 64, 96)
        assert int(sample.pred_sem_seg.data.max()) < 150


# -- the supernet configs of the architecture search (docs/search.md) -------

SEARCH_CONFIGS = sorted(
    osp.relpath(path, osp.join(REPO, 'configs'))
    for path in glob.glob(osp.join(REPO, 'configs', 'search', '*.py')))


def test_the_search_configs_are_complete():
    assert SEARCH_CONFIGS == [
        'search/eformerv2_supernet_in1k.py',
        'search/eformerv2_supernet_no-teacher_in1k.py',
        'search/eformerv2_supernet_shapes.py'
    ]


@pytest.mark.parametrize('config', SEARCH_CONFIGS)
def test_search_config_builds_a_supernet(config):
    """Every search config builds a sandwich classifier on a supernet whose
    head takes the largest width, with the distributed sandwich step; the
    ImageNet ones keep the V2 recipe and build on the meta device."""
    from mmengine.registry import MODEL_WRAPPERS

    from mmeformer.models.backbones import (EfficientFormerV2Space,
                                            EfficientFormerV2Supernet)
    from mmeformer.search import (SandwichDistributedDataParallel,
                                  SandwichImageClassifier)
    cfg = parse(config)
    host = get_host(cfg)
    assert host.scope == 'mmpretrain'
    host.register_modules()
    assert 'mmeformer.search' in cfg.custom_imports.imports
    assert cfg.model.type == 'mmeformer.SandwichImageClassifier'
    backbone = cfg.model.backbone
    assert backbone.type == 'mmeformer.EfficientFormerV2Supernet'
    space = EfficientFormerV2Space.default() if backbone.get(
        'space') is None else EfficientFormerV2Space.from_dict(backbone.space)
    assert cfg.model.head.in_channels == space.largest()['channels'][-1]
    assert cfg.search.input_size == backbone.get('attn_ref_size', 224)
    assert cfg.sync_bn is None
    assert MODEL_WRAPPERS.get(
        cfg.model_wrapper_cfg.type) is SandwichDistributedDataParallel

    imagenet = config.endswith('_in1k.py')
    if imagenet:
        # The recipe of the published classifiers (test_official_settings).
        optimizer = cfg.optim_wrapper.optimizer
        assert (optimizer.lr, optimizer.weight_decay) == (1e-3, 0.025)
        assert cfg.train_cfg.max_epochs == 450
        assert cfg.train_dataloader.sampler.type == 'RepeatAugSampler'
        assert cfg.model.head.distillation
        assert (cfg.model.teacher is None) == ('_no-teacher_' in config)
        # Calibration on real-looking training images.
        calibration = cfg.calibration_dataloader.dataset
        pipeline = [t.type for t in calibration.pipeline]
        assert calibration.split == 'train'
        assert 'RandAugment' not in pipeline
        assert 'RandomErasing' not in pipeline
        with torch.device('meta'):
            model = MODELS.build(cfg.model)
    else:
        model = MODELS.build(cfg.model)
    assert isinstance(model, SandwichImageClassifier)
    assert isinstance(model.backbone, EfficientFormerV2Supernet)
    assert model.backbone.space.fingerprint() == space.fingerprint()
    if imagenet:
        return
    # The small supernet trains a sandwich step on a tiny image.
    model.train()
    optim_wrapper = build_optim_wrapper(model,
                                        copy.deepcopy(cfg.optim_wrapper))
    log_vars = model.train_step(tiny_batch('classification'), optim_wrapper)
    assert {'loss', 'loss_kd'} <= set(log_vars)
    assert len(model.last_archs) == 2 + cfg.model.num_random
