# Semantic FPN with EfficientFormerV2-S0 on the synthetic shapes set
# (tools/dataset_converters/make_shapes.py), sized to train from scratch in
# minutes on 2 CPU cores: `python tools/demo.py segmentation` runs it.
# Origin: ../segmentation/fpn_eformerv2_s0_ade20k_40k.py; only data, schedule
# and sizes change: 256x256 images, a random-init backbone whose attention
# biases are learnt for 256-pixel inputs, and a short, higher-lr schedule.
#
# The label maps follow ADE20K (0 = background, 1..3 = shapes), but unlike
# ADE20K's unannotated "other", background here is one well-defined class:
# it is kept as class 0 (reduce_zero_label=False) instead of being ignored,
# so the mIoU also scores where the shapes end.
_base_ = '../segmentation/fpn_eformerv2_s0_ade20k_40k.py'

data_root = 'data/shapes/'
classes = ('background', 'square', 'circle', 'triangle')
palette = [(0, 0, 0), (220, 20, 60), (0, 170, 0), (30, 110, 240)]
metainfo = dict(classes=classes, palette=palette)
img_scale = (256, 256)
max_iters = 300

model = dict(
    data_preprocessor=dict(size=img_scale),
    backbone=dict(attn_ref_size=256, init_cfg=None),
    decode_head=dict(num_classes=len(classes)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]

shapes_dataset = dict(
    _delete_=True,
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=metainfo,
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=False)
train_dataloader = dict(
    batch_size=4,
    # One worker keeps the second core for the model; workers also make
    # resumed runs repeat the augmentations exactly (RandomStateHook).
    num_workers=1,
    dataset=dict(
        **shapes_dataset,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    dataset=dict(
        **shapes_dataset,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(
    optimizer=dict(lr=1e-3),
    # Guards the first steps of a random-init network at this lr.
    clip_grad=dict(_delete_=True, max_norm=10.))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=30),
    dict(
        type='PolyLR',
        eta_min=1e-6,
        power=0.9,
        begin=30,
        end=max_iters,
        by_epoch=False)
]
auto_scale_lr = dict(enable=False, base_batch_size=4)

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=100, max_keep_ckpts=2))
randomness = dict(seed=0)
