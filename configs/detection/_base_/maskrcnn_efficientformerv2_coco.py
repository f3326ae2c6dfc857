# What the official EfficientFormerV2 detection configs change from V1
# (maskrcnn_efficientformer_coco.py): weight decay 0.05, no per-output norm,
# and synchronised BatchNorm in the backbone. The official V2 dense backbone
# converts itself to SyncBatchNorm, which also defeats its own attempt to keep
# BatchNorm statistics frozen, so its BatchNorms train on cross-GPU batches.
_base_ = './maskrcnn_efficientformer_coco.py'

model = dict(
    backbone=dict(
        type='mmeformer.EfficientFormerV2',
        arch='s0',
        out_norm_cfg=None,
        norm_eval=False,
        init_cfg=dict(checkpoint='checkpoints/efficientformerv2_s0_in1k.pth')),
    neck=dict(in_channels=[32, 48, 96, 176]))

optim_wrapper = dict(optimizer=dict(weight_decay=0.05))

# Applied by mmengine's Runner in distributed runs only.
sync_bn = 'torch'
