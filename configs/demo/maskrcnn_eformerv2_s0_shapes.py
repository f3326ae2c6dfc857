# Mask R-CNN + FPN with EfficientFormerV2-S0 on the synthetic shapes set
# (tools/dataset_converters/make_shapes.py), sized to train from scratch in
# minutes on 2 CPU cores: `python tools/demo.py detection` runs it.
# Origin: ../detection/maskrcnn_eformerv2_s0_coco.py; only data, schedule
# and sizes change: 256x256 images, a random-init backbone whose attention
# biases are learnt for 256-pixel inputs, anchors and RoI counts for up to
# four 24-80 pixel shapes per image, and a short, higher-lr schedule.
_base_ = '../detection/maskrcnn_eformerv2_s0_coco.py'

data_root = 'data/shapes/'
classes = ('square', 'circle', 'triangle')
palette = [(220, 20, 60), (0, 170, 0), (30, 110, 240)]
metainfo = dict(classes=classes, palette=palette)
img_scale = (256, 256)
max_iters = 200

model = dict(
    backbone=dict(attn_ref_size=256, init_cfg=None),
    rpn_head=dict(
        # Anchors of 24-384 pixels: the smallest shapes are 24 pixels wide.
        anchor_generator=dict(scales=[6])),
    roi_head=dict(
        bbox_head=dict(num_classes=len(classes)),
        mask_head=dict(num_classes=len(classes))),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        # At most four shapes per image: 20 detections leave room for
        # low-score guesses that the AP still counts.
        rcnn=dict(max_per_img=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]

train_dataloader = dict(
    batch_size=2,
    # One worker keeps the second core for the model; workers also make
    # resumed runs repeat the augmentations exactly (RandomStateHook).
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='images/training/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='images/validation/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters)
optim_wrapper = dict(
    optimizer=dict(lr=1e-3),
    # Guards the first steps of a random-init network at this lr.
    clip_grad=dict(max_norm=10.))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=50,
        end=max_iters,
        T_max=max_iters - 50,
        eta_min=1e-5)
]
auto_scale_lr = dict(enable=False, base_batch_size=4)

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=100, max_keep_ckpts=2))
log_processor = dict(window_size=10, by_epoch=False)
randomness = dict(seed=0)
