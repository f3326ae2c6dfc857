import torch
import torch.onnx.symbolic_opset9 as opset9

from mmeformer.deployment import mmdeploy_compat, needed_shims


def test_shims_are_still_needed():
    """Fails once torch no longer needs a shim: then delete that shim."""
    assert needed_shims() == [
        'torchscript_export_by_default', 'restored_cast_long'
    ]


def test_shims_apply_only_inside_the_block():
    export, needed = torch.onnx.export, needed_shims()
    with mmdeploy_compat() as applied:
        assert applied == needed
        assert needed_shims() == []
        assert torch.onnx.export.keywords == dict(dynamo=False)
        assert callable(opset9._cast_Long)
    assert torch.onnx.export is export
    assert not hasattr(opset9, '_cast_Long')


def test_restored_cast_long_exports_a_cast_to_int64(tmp_path):
    import onnx

    class CastToLong(torch.autograd.Function):

        @staticmethod
        def forward(ctx, x):
            return x.long()

        @staticmethod
        def symbolic(g, x):
            return opset9._cast_Long(g, x, False)

    class Model(torch.nn.Module):

        def forward(self, x):
            return CastToLong.apply(x)

    path = str(tmp_path / 'cast.onnx')
    with mmdeploy_compat():
        torch.onnx.export(Model(), (torch.ones(2), ), path)
    (node, ) = onnx.load(path).graph.node
    assert node.op_type == 'Cast'
    assert node.attribute[0].i == onnx.TensorProto.INT64
