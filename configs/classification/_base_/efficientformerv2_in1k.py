# The official EfficientFormerV2 ImageNet-1K recipe: the EfficientFormer one
# (see efficientformer_in1k.py) run for 450 epochs, the length of the released
# V2 checkpoints (eformer_*_450.pth) that the dense models start from.
_base_ = './efficientformer_in1k.py'

model = dict(backbone=dict(type='mmeformer.EfficientFormerV2', arch='s0'))

optim_wrapper = dict(
    # timm clips the official (C, 1, 1) layer scales channel by channel; ours
    # are flat, so they are named to be clipped one element per unit too.
    clip_grad=dict(elementwise_keys=['.ls1.weight', '.ls2.weight']),
    paramwise_cfg=dict(
        # The official V2 stores layer scales as (C, 1, 1) tensors, which
        # timm's 1-D rule does not exempt from weight decay; ours are flat.
        custom_keys={
            '.ls1.weight': dict(decay_mult=1.),
            '.ls2.weight': dict(decay_mult=1.)
        }))

train_cfg = dict(max_epochs=450)
