# The EfficientFormer (V1) L1 classifier on the shapes classification set,
# with the data, augmentation and schedule of eformerv2_shapes_cls.py: a V1
# model trained on generated data, for scoring exported and INT8 files of
# the V1 family (docs/deployment.md). Origin: eformerv2_shapes_cls.py, with
# the V1-L1 backbone of ../../classification/eformer_l1_in1k.py.
_base_ = ['./eformerv2_shapes_cls.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmeformer.EfficientFormer',
        arch='l1',
        final_norm=True,
        attn_ref_size={{_base_.img_size}}),
    head=dict(in_channels=448))
