# EfficientFormerV2 classifiers on the shapes classification set (20 classes,
# tools/dataset_converters/make_shapes.py --classification), at 96x96, sized
# to train from scratch on 2 CPU cores: the task of the architecture-search
# walkthrough (docs/search.md). Origin: ../../classification/
# eformerv2_s0_no-teacher_in1k.py, with the ImageNet data, augmentation and
# 450-epoch schedule replaced by this small set and a short iteration-based
# schedule. The train split trains, val is held out (the search scores
# subnets on it), test gives the reported accuracy.
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmeformer'], allow_failed_imports=False)

data_root = 'data/shapes_cls/'
num_classes = 20
img_size = 96
max_iters = 200

model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        num_classes=num_classes,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='mmeformer.EfficientFormerV2',
        arch='s0',
        final_norm=True,
        attn_ref_size=img_size),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='mmeformer.EfficientFormerClsHead',
        num_classes=num_classes,
        in_channels=176,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.6, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=32,
    # One worker keeps the second core for the model.
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        data_prefix='train',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=50,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        data_prefix='val',
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=50,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        data_prefix='test',
        pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=5.))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=50),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=False,
        begin=50,
        end=max_iters)
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(
        type='mmeformer.AtomicCheckpointHook',
        by_epoch=False,
        interval=100,
        max_keep_ckpts=1))
randomness = dict(seed=0)
log_processor = dict(by_epoch=False)
