# The EfficientFormerV2 supernet of a small search space on the shapes
# classification set at 96x96, trained by the sandwich rule (largest,
# smallest and two random subnets per step, in-place distillation): the
# supernet of the search walkthrough in docs/search.md (tools/train.py, then
# tools/search.py). Origin: ./_base_/eformerv2_shapes_cls.py (data,
# schedule); the space holds the published V2-S0, S1 and S2, so the latency
# table predicts them and the supernet can be compared with them.
_base_ = './_base_/eformerv2_shapes_cls.py'
custom_imports = dict(
    imports=['mmeformer', 'mmeformer.search'], allow_failed_imports=False)

# The widths of S0, S1 and S2 and one step below them in every stage,
# 1-4 / 1-4 / 2-12 / 1-8 blocks (up to S2's depths), up to four attention
# blocks in stages 2 and 3, MLP ratios 2, 3 or 4. The largest subnet is S2
# with every MLP ratio 4.
space = dict(
    widths=[[16, 24, 32], [32, 48, 64], [64, 96, 120, 144],
            [128, 176, 224, 288]],
    min_depths=[1, 1, 2, 1],
    max_depths=[4, 4, 12, 8],
    max_attn_blocks=[4, 4],
    mlp_ratios=[2, 3, 4])

model = dict(
    type='mmeformer.SandwichImageClassifier',
    num_random=2,
    backbone=dict(
        _delete_=True,
        type='mmeformer.EfficientFormerV2Supernet',
        space=space,
        final_norm=True,
        attn_ref_size={{_base_.img_size}}),
    head=dict(in_channels=288))

# What tools/search.py reads: the latency table's input size, the batches
# that recalibrate BatchNorm (train split) and those that score a subnet
# (val split, a fixed random subset), and their seed.
search = dict(
    input_size={{_base_.img_size}},
    calibration_batches=2,
    scoring_batches=4,
    seed=0)

# SyncBN would replace the supernet's elastic BatchNorms.
sync_bn = None
# Several processes (tools/dist_train.sh) run the sandwich step too: the same
# subnets on every process, gradients averaged once per step.
model_wrapper_cfg = dict(
    type='mmeformer.SandwichDistributedDataParallel', broadcast_buffers=False)
