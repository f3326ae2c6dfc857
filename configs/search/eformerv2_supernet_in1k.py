# The EfficientFormerV2 supernet of the default search space (S0 to L,
# EfficientFormerV2Space.default()) on ImageNet-1K, trained by the sandwich
# rule (largest, smallest and two random subnets per step, in-place
# distillation) on the V2 ImageNet recipe. Origin:
# ../classification/eformerv2_l_in1k.py (data, augmentation, AdamW, 450
# epochs, auto-scaled lr), with the backbone replaced by the supernet. Its
# RegNetY-16GF teacher distils into the largest subnet's dist_head as in the
# recipe (checkpoints/regnety_160_deit_in1k.pth, see
# configs/classification/README.md); eformerv2_supernet_no-teacher_in1k.py,
# or --cfg-options model.teacher=None, trains without it. Search the trained
# supernet with tools/dist_search.sh (docs/search.md).
_base_ = '../classification/eformerv2_l_in1k.py'
custom_imports = dict(
    imports=['mmeformer', 'mmeformer.search'], allow_failed_imports=False)

model = dict(
    type='mmeformer.SandwichImageClassifier',
    num_random=2,
    backbone=dict(
        _delete_=True,
        type='mmeformer.EfficientFormerV2Supernet',
        space=None,
        final_norm=True,
        # No stochastic depth: it would drop blocks of the smallest subnets
        # too, which V2-S0 and S1 train without.
        drop_path_rate=0.),
    # The largest subnet's last width (V2-L's).
    head=dict(in_channels=384))

# What tools/search.py reads: the latency table's input size; BatchNorm
# recalibration on 16 batches of training images (crop and flip only, no
# RandAugment or erasing, so the statistics are those of real images) and
# scoring on a fixed random subset of 40 batches (5,120 images) of val, all
# with the same seed on every process.
search = dict(
    input_size=224, calibration_batches=16, scoring_batches=40, seed=0)
calibration_dataloader = dict(
    batch_size=128,
    dataset=dict(
        type='ImageNet',
        data_root='data/imagenet',
        split='train',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(
                type='RandomResizedCrop',
                scale=224,
                backend='pillow',
                interpolation='bicubic'),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
            dict(type='PackInputs'),
        ]))

# SyncBN would replace the supernet's elastic BatchNorms.
sync_bn = None
# tools/dist_train.sh runs the sandwich step on every process: the same
# subnets everywhere, gradients averaged once per step.
model_wrapper_cfg = dict(
    type='mmeformer.SandwichDistributedDataParallel', broadcast_buffers=False)
