# The ImageNet-1K recipe of the official EfficientFormer repository
# (snap-research/EfficientFormer, main.py defaults, DeiT-style): 8 GPUs x 128
# images, AdamW lr 1e-3 x total batch / 1024 (auto_scale_lr below), weight
# decay 0.025, 5 warm-up epochs then cosine to 1e-5 over 300 epochs,
# RandAugment rand-m9-mstd0.5-inc1, random erasing 0.25 (per-pixel), mixup
# 0.8, cutmix 1.0, label smoothing 0.1, train crop 224, test resize 256 then
# center crop 224 (bicubic); hard distillation (alpha 0.5) from DeiT's
# RegNetY-16GF teacher, repeated augmentation (3 repeats), adaptive gradient
# clipping (AGC 0.01) and SyncBN. The official weight EMA is left out (see
# configs/classification/README.md).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmeformer'], allow_failed_imports=False)

model = dict(
    type='mmeformer.DistillationImageClassifier',
    backbone=dict(
        type='mmeformer.EfficientFormer',
        arch='l1',
        drop_path_rate=0.,
        final_norm=True),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='mmeformer.EfficientFormerClsHead',
        num_classes=1000,
        in_channels=448,
        distillation=True,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')),
    # The teacher sees the same mixed batch; see configs/classification/
    # README.md for the file (tools/model_converters/
    # timm_teacher_to_mmeformer.py writes it).
    teacher=dict(
        type='TimmClassifier',
        model_name='regnety_160',
        num_classes=1000,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/regnety_160_deit_in1k.pth')),
    distillation_type='hard',
    distillation_alpha=0.5,
    distillation_tau=1.0,
    # timm's Mixup with switch_prob 0.5: one of the two per batch.
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]))

# DeiT's repeated augmentation: each image thrice per epoch, in different
# processes, each epoch as long as the dataset.
train_dataloader = dict(
    batch_size=128, sampler=dict(type='RepeatAugSampler', num_repeats=3))
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

optim_wrapper = dict(
    constructor='mmeformer.AGCOptimWrapperConstructor',
    optimizer=dict(lr=1e-3, weight_decay=0.025),
    # timm's adaptive_clip_grad, unit-wise on every parameter.
    clip_grad=dict(type='agc', clip_factor=0.01),
    # timm's rule: no decay for biases and 1-D parameters (norms, V1 layer
    # scales); the Swin base's extra custom keys do not apply here.
    paramwise_cfg=dict(
        _delete_=True,
        norm_decay_mult=0.,
        bias_decay_mult=0.,
        flat_decay_mult=0.))

param_scheduler = [
    # warm-up from the official warmup_lr 1e-5, i.e. 1e-2 of the base lr.
    dict(
        type='LinearLR',
        start_factor=1e-2,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True),
    # `end` defaults to max_epochs, so a config changing the length only
    # sets train_cfg.max_epochs.
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5)
]
train_cfg = dict(max_epochs=300)

# The official main.py always scales the lr to the total batch: 1e-3 x
# processes x batch_size / 1024. mmengine does the same when enabled, before
# the schedulers start (5e-4 on 4 x 128, 1e-3 on 8 x 128); the warm-up starts
# at 1e-2 of the scaled lr (the official at 1e-5 whatever the batch) and the
# cosine still ends at 1e-5. `--cfg-options auto_scale_lr.enable=False`
# trains at lr 1e-3 on any batch.
auto_scale_lr = dict(base_batch_size=1024, enable=True)

# Batch statistics over all processes when distributed.
sync_bn = 'torch'

# Checkpoints that survive a kill at any instant (the interval and the other
# checkpoint settings stay the host's): atomic files and pointer, a --resume
# that falls back to the newest complete checkpoint, and the random states of
# every rank saved and restored (mmeformer/engine/hooks).
default_hooks = dict(
    checkpoint=dict(type='mmeformer.AtomicCheckpointHook'),
    resume_fallback=dict(type='mmeformer.ResumeFallbackHook'),
    random_state=dict(type='mmeformer.RandomStateHook'))
