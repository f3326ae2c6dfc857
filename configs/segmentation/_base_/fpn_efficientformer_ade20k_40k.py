# Semantic FPN with an EfficientFormer backbone on ADE20K, 40k iterations, as
# in the official segmentation configs (snap-research/EfficientFormer
# segmentation/configs/sem_fpn, mmseg 0.19): 8 GPUs x 4 images of 512x512
# crops, AdamW lr 2e-4 and weight decay 1e-4, poly decay (power 0.9), an
# evaluation every 4k iterations, test images resized to (2048, 512) and then
# to a multiple of 32. This file holds the V1 settings;
# fpn_efficientformerv2_ade20k_40k.py changes what V2 does.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
custom_imports = dict(imports=['mmeformer'], allow_failed_imports=False)

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    # The base's ResNet weights would be downloaded; ours come from init_cfg.
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmeformer.EfficientFormer',
        arch='l1',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.,
        # The official dense models learn their attention biases afresh for
        # 512-pixel inputs (other sizes interpolate them).
        attn_ref_size=512,
        # The official V1 dense backbone normalises every output.
        out_norm_cfg=dict(type='GN', num_groups=1),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/efficientformer_l1_in1k.pth',
            prefix='backbone.')),
    neck=dict(in_channels=[48, 96, 224, 448], num_outs=4),
    decode_head=dict(channels=128, num_classes=150))

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    # The stride-2 attention of stage 3 needs even stage-3 maps; the official
    # AlignResize resizes test images to a multiple of 32 for this.
    dict(type='ResizeToMultiple', size_divisor=32),
    # Loaded after the resizes: the metric compares with the original map.
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-4, weight_decay=1e-4))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=0.,
        power=0.9,
        begin=0,
        end=40000,
        by_epoch=False)
]

# 8 GPUs x 4 images; --auto-scale-lr rescales lr for other batch sizes.
auto_scale_lr = dict(enable=False, base_batch_size=32)

# Checkpoints that survive a kill at any instant (the interval and the other
# checkpoint settings stay the host's): atomic files and pointer, a --resume
# that falls back to the newest complete checkpoint, and the random states of
# every rank saved and restored (mmeformer/engine/hooks).
default_hooks = dict(
    checkpoint=dict(type='mmeformer.AtomicCheckpointHook'),
    resume_fallback=dict(type='mmeformer.ResumeFallbackHook'),
    random_state=dict(type='mmeformer.RandomStateHook'))
