# Mask R-CNN + FPN with an EfficientFormer backbone on COCO 2017, 1x schedule,
# as in the official detection configs (snap-research/EfficientFormer
# detection/configs, mmdet 2.19): 8 GPUs x 2 images, 1333x800 inputs padded to
# a multiple of 32, AdamW lr 2e-4 without gradient clipping, 12 epochs with
# steps at 8 and 11 after 500 linear warm-up iterations. This file holds the
# V1 settings; maskrcnn_efficientformerv2_coco.py changes what V2 does.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmeformer'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmeformer.EfficientFormer',
        arch='l1',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.,
        # The official dense models learn their attention biases afresh for
        # 800-pixel inputs (other sizes interpolate them).
        attn_ref_size=800,
        # The official V1 dense backbone normalises every output.
        out_norm_cfg=dict(type='GN', num_groups=1),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/efficientformer_l1_in1k.pth',
            prefix='backbone.')),
    neck=dict(in_channels=[48, 96, 224, 448]))

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-4, weight_decay=1e-4))

param_scheduler = [
    # The official warm-up starts at warmup_ratio 1e-6, not mmdet's 1e-3.
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=12,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1)
]

# 8 GPUs x 2 images; --auto-scale-lr rescales lr for other batch sizes.
auto_scale_lr = dict(base_batch_size=16)

# Checkpoints that survive a kill at any instant (the interval and the other
# checkpoint settings stay the host's): atomic files and pointer, a --resume
# that falls back to the newest complete checkpoint, and the random states of
# every rank saved and restored (mmeformer/engine/hooks).
default_hooks = dict(
    checkpoint=dict(type='mmeformer.AtomicCheckpointHook'),
    resume_fallback=dict(type='mmeformer.ResumeFallbackHook'),
    random_state=dict(type='mmeformer.RandomStateHook'))
