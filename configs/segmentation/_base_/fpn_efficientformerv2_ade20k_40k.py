# What the official EfficientFormerV2 segmentation configs change from V1
# (fpn_efficientformer_ade20k_40k.py): poly decay to 1e-6, no per-output norm,
# and synchronised BatchNorm in the backbone. The official V2 dense backbone
# converts itself to SyncBatchNorm, which also defeats its own attempt to keep
# BatchNorm statistics frozen, so its BatchNorms train on cross-GPU batches.
_base_ = './fpn_efficientformer_ade20k_40k.py'

model = dict(
    backbone=dict(
        type='mmeformer.EfficientFormerV2',
        arch='s0',
        out_norm_cfg=None,
        norm_eval=False,
        init_cfg=dict(checkpoint='checkpoints/efficientformerv2_s0_in1k.pth')),
    neck=dict(in_channels=[32, 48, 96, 176]))

param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-6,
        power=0.9,
        begin=0,
        end=40000,
        by_epoch=False)
]

# Applied by mmengine's Runner in distributed runs only.
sync_bn = 'torch'
