import torch
import torch.nn as nn

from mmeformer.models.layers import FusionReport, conv_bn, fuse_conv_bn


class Chain(nn.Module):
    """Conv-BN units in every order, plus a BN that no conv precedes."""

    def __init__(self):
        super().__init__()
        self.plain = conv_bn(3, 8, 3, act_cfg=dict(type='GELU'))
        self.depthwise = conv_bn(8, 8, 3, stride=2, groups=8)
        self.act_first = conv_bn(
            8, 6, act_cfg=dict(type='GELU'), act_first=True)
        self.lone_bn = nn.BatchNorm2d(6)

    def forward(self, x):
        return self.lone_bn(self.act_first(self.depthwise(self.plain(x))))


def test_fusion_folds_every_unit_and_keeps_outputs(randomize):
    model = randomize(Chain()).eval()
    x = torch.randn(2, 3, 17, 23)
    with torch.no_grad():
        expected = model(x)
        report = fuse_conv_bn(model, prefix='model.')
        out = model(x)
    assert isinstance(report, FusionReport)
    assert report.fused == [
        'model.plain.conv <- model.plain.bn',
        'model.depthwise.conv <- model.depthwise.bn',
        'model.act_first.conv <- model.act_first.bn',
    ]
    assert report.unfused == ['model.lone_bn']
    assert len(report) == 3 and 'lone_bn' in str(report)
    for name in ('plain', 'depthwise', 'act_first'):
        assert isinstance(getattr(model, name).bn, nn.Identity)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_fusion_twice_is_a_no_op(randomize):
    model = randomize(Chain()).eval()
    fuse_conv_bn(model)
    x = torch.randn(1, 3, 9, 9)
    with torch.no_grad():
        expected = model(x)
        report = fuse_conv_bn(model)
        assert report.fused == []
        torch.testing.assert_close(model(x), expected, rtol=0, atol=0)
