import os
import os.path as osp

import onnx
import pytest
import torch

from mmeformer.deployment import (ExportGroupNorm, build_export_model,
                                  compare_outputs, export_onnx, open_session,
                                  verify_onnx)
from mmeformer.runtime import SetupError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: One V1 and one V2 variant.
CLASSIFIERS = [
    'classification/eformer_l1_in1k.py', 'classification/eformerv2_s0_in1k.py'
]
#: Sizes off the attention reference grid, odd ones included.
DYNAMIC_SIZES = [(64, 64), (65, 97)]


def weight_bytes(model):
    return 4 * sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('config', CLASSIFIERS)
def test_classifier_static(config, load_cfg, random_checkpoint, tmp_path):
    cfg = load_cfg(config)
    model = build_export_model(cfg, 'classifier', random_checkpoint(cfg))
    path = export_onnx(model, (64, 96), str(tmp_path / 'cls.onnx'))
    # The file holds the bias tables, not the gathered biases.
    assert os.path.getsize(path) < 1.1 * weight_bytes(model)
    graph = onnx.load(path).graph
    assert [o.name for o in graph.output] == ['logits']
    # The biases are constants: no bicubic resize at run time (V2's
    # stride-2 attention upsamples its output bilinearly).
    modes = {
        attr.s
        for node in graph.node if node.op_type == 'Resize'
        for attr in node.attribute if attr.name == 'mode'
    }
    assert b'cubic' not in modes
    assert not any(node.op_type == 'Range' for node in graph.node)
    (_, error), = verify_onnx(model, path, [(64, 96)])
    assert error <= 1e-4


@pytest.mark.parametrize('config, opset', zip(CLASSIFIERS, (17, 11)))
def test_backbone_dynamic_at_many_sizes(config, opset, load_cfg,
                                        random_checkpoint, tmp_path):
    from mmeformer.models import EfficientFormer, EfficientFormerV2
    cfg = load_cfg(config)
    family = EfficientFormerV2 if 'v2' in config else EfficientFormer
    # The dense backbone as detectors and segmentors use it (V1: a
    # GroupNorm on each output, exported as ExportGroupNorm).
    cfg.model.backbone.update(
        out_indices=(0, 1, 2, 3),
        final_norm=False,
        out_norm_cfg=family.dense_out_norm_cfg)
    model = build_export_model(cfg, 'backbone', random_checkpoint(cfg))
    if family is EfficientFormer:
        assert all(
            isinstance(norm, ExportGroupNorm)
            for norm in model.backbone.out_norms)
    # Traced at the reference size, where PyTorch skips the resize.
    path = export_onnx(
        model, (224, 224),
        str(tmp_path / 'backbone.onnx'),
        dynamic=True,
        opset_version=opset)
    graph = onnx.load(path).graph
    assert [o.name
            for o in graph.output] == ['feat0', 'feat1', 'feat2', 'feat3']
    results = verify_onnx(model, path, DYNAMIC_SIZES)
    assert [shape for shape, _ in results] == DYNAMIC_SIZES
    verify_onnx(model, path, DYNAMIC_SIZES[-1:], batch_size=2)


def test_backbone_static_keeps_its_size(load_cfg, random_checkpoint, tmp_path):
    cfg = load_cfg('classification/eformerv2_s0_in1k.py')
    model = build_export_model(cfg, 'backbone', random_checkpoint(cfg))
    path = export_onnx(model, (65, 97), str(tmp_path / 'backbone.onnx'))
    # Off the reference grid: the resized biases, computed from the tables
    # when the runtime loads the file, are not stored.
    assert os.path.getsize(path) < 1.1 * weight_bytes(model)
    verify_onnx(model, path, [(65, 97)])
    shape = onnx.load(path).graph.input[0].type.tensor_type.shape
    assert [d.dim_value for d in shape.dim] == [1, 3, 65, 97]


class BlockExport(torch.nn.Module):
    """One block, with the ``output_names`` that :func:`export_onnx`
    reads."""
    output_names = ('out', )

    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        return self.block(x)


@pytest.mark.parametrize('dynamic', [False, True])
def test_file_holds_bias_tables_at_a_large_grid(dynamic, tmp_path):
    from mmeformer.models.backbones.efficientformer_v2 import \
        Attention4DDownsample
    from mmeformer.testing import randomize_weights

    # The V2 stride-2 attention at a 32x48 key grid: the gathered bias
    # (8, 384, 1536) is 19 MB of float, its (Nq, Nk) index 4.7 MB of int64,
    # the block's weights about 0.2 MB.
    torch.manual_seed(0)
    block = randomize_weights(Attention4DDownsample(32, 32, (32, 48)))
    model = BlockExport(block)
    path = export_onnx(
        model, (32, 48),
        str(tmp_path / 'block.onnx'),
        dynamic=dynamic,
        in_channels=32)
    assert os.path.getsize(path) < 2 * weight_bytes(model)
    session = open_session(path, 'onnxruntime')
    # The reference grid, and another one for the dynamic file.
    shapes = [(32, 48), (21, 35)] if dynamic else [(32, 48)]
    for shape in shapes:
        x = torch.randn(1, 32, *shape)
        with torch.no_grad():
            expected = model(x)
        assert max(compare_outputs([expected], session(x))) <= 1e-4


@pytest.mark.parametrize('config', [
    'segmentation/fpn_eformer_l1_ade20k_40k.py',
    'segmentation/fpn_eformerv2_s0_ade20k_40k.py'
])
def test_segmentor_dynamic(config, load_cfg, random_checkpoint, tmp_path):
    cfg = load_cfg(config)
    model = build_export_model(cfg, 'segmentor', random_checkpoint(cfg))
    path = export_onnx(
        model, (64, 64), str(tmp_path / 'seg.onnx'), dynamic=True)
    verify_onnx(model, path, [(64, 64), (65, 97)])
    verify_onnx(model, path, [(65, 97)], batch_size=2)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 65, 97)).shape == (1, 150, 65, 97)


def test_export_is_fused_unless_asked(load_cfg):
    cfg = load_cfg('classification/eformerv2_s0_in1k.py')
    fused = build_export_model(cfg, 'classifier')
    eager = build_export_model(cfg, 'classifier', fuse=False)

    def count(model):
        return sum(
            isinstance(x, torch.nn.BatchNorm2d) for x in model.modules())

    assert count(fused) < count(eager)


@pytest.fixture(scope='module')
def s0_classifier():
    from mmengine.config import Config
    return build_export_model(
        Config.fromfile(
            osp.join(REPO, 'configs', 'classification',
                     'eformerv2_s0_in1k.py')), 'classifier')


@pytest.mark.parametrize('kwargs, message', [
    (dict(shape=(31, 64)), 'too small'),
    (dict(opset_version=9), 'opset 9 is not supported'),
    (dict(output_file='missing/dir/out.onnx'), 'does not exist'),
])
def test_bad_export_arguments_write_nothing(kwargs, message, s0_classifier,
                                            tmp_path):
    model = s0_classifier
    args = dict(shape=(64, 64), output_file=str(tmp_path / 'out.onnx'))
    args.update(kwargs)
    if 'missing' in args['output_file']:
        args['output_file'] = str(tmp_path / args['output_file'])
    with pytest.raises(SetupError, match=message):
        export_onnx(model, **args)
    assert os.listdir(tmp_path) == []


def test_failed_export_leaves_no_file(s0_classifier, tmp_path, monkeypatch):

    def fail(*args, **kwargs):
        with open(args[2], 'wb') as f:
            f.write(b'half')
        raise RuntimeError('exporter failed')

    monkeypatch.setattr(torch.onnx, 'export', fail)
    with pytest.raises(RuntimeError, match='exporter failed'):
        export_onnx(s0_classifier, (64, 64), str(tmp_path / 'out.onnx'))
    assert os.listdir(tmp_path) == []
