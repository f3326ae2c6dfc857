"""Logits of the package's classifiers against timm's, for the same weights.

timm builds each of the seven variants with random weights (BatchNorm
statistics, layer scales and attention biases included), the package's
converter maps its state dict, and a classifier built from the package
config must give timm's logits. At a size other than the attention
reference, timm's attention biases are replaced by a bicubic resize of
timm's own gathered bias, computed here with ``F.interpolate``: the rule of
the official dense backbones. Every variant is compared on one small,
non-square image; V1-L1 and V2-S0 also at the reference size.
"""
import copy
import os.path as osp

import pytest
import timm
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

from mmeformer.converters import convert_checkpoint

CONFIGS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    'classification')
#: timm model name, the package config of the same variant.
VARIANTS = {
    'l1': ('efficientformer_l1', 'eformer_l1_in1k.py'),
    'l3': ('efficientformer_l3', 'eformer_l3_in1k.py'),
    'l7': ('efficientformer_l7', 'eformer_l7_in1k.py'),
    's0': ('efficientformerv2_s0', 'eformerv2_s0_in1k.py'),
    's1': ('efficientformerv2_s1', 'eformerv2_s1_in1k.py'),
    's2': ('efficientformerv2_s2', 'eformerv2_s2_in1k.py'),
    'l': ('efficientformerv2_l', 'eformerv2_l_in1k.py'),
}
#: Variants also compared at the 224x224 reference size.
AT_REFERENCE_SIZE = ('l1', 's0')
#: Small and non-square: 3x4 tokens in the last stage.
OTHER_SIZE = (96, 128)


def build_ours(config: str, checkpoint: str) -> torch.nn.Module:
    """The classifier of a package config, loaded strictly."""
    cfg = Config.fromfile(osp.join(CONFIGS, config))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    model.load_state_dict(state['state_dict'], strict=True)
    return model.eval()


def resized_timm_biases(model: torch.nn.Module, counts: dict) -> dict:
    """timm's gathered ``(heads, Nq, Nk)`` bias of each attention named in
    ``counts``, resized bicubically to its ``(Nq, Nk)`` there."""
    modules = dict(model.named_modules())
    biases = {}
    for name, size in counts.items():
        attn = modules[name]
        bias = attn.attention_biases[:, attn.attention_bias_idxs]
        biases[name] = F.interpolate(
            bias[None], size, mode='bicubic', align_corners=False)[0]
    return biases


def use_biases(model: torch.nn.Module, biases: dict) -> None:
    """Make timm's attentions add the given biases."""
    for name, module in model.named_modules():
        if name in biases:
            module.get_attention_biases = (
                lambda device, bias=biases[name]: bias)


@pytest.fixture(scope='module', params=sorted(VARIANTS))
def timm_and_ours(request, tmp_path_factory, randomize):
    """A random timm model and the package's classifier converted from it."""
    timm_name, config = VARIANTS[request.param]
    torch.manual_seed(0)
    reference = randomize(timm.create_model(timm_name)).eval()
    with torch.no_grad():
        # Logits of order 1 (five times timm's init): a mix-up of
        # same-shaped tensors moves them by far more than the tolerance.
        for head in (reference.head, reference.head_dist):
            head.weight.normal_(std=0.1)
    folder = tmp_path_factory.mktemp(timm_name)
    src, out = str(folder / 'timm.pth'), str(folder / 'converted.pth')
    torch.save(reference.state_dict(), src)
    convert_checkpoint(src, 'timm', out=out, variant=request.param)
    return request.param, reference, build_ours(config, out)


@pytest.mark.parametrize('timm_and_ours', AT_REFERENCE_SIZE, indirect=True)
def test_logits_equal_timm_at_the_reference_size(timm_and_ours):
    _, reference, ours = timm_and_ours
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(x)
        logits = ours(x, mode='tensor')
    assert expected.abs().max() > 1  # the comparison is not of zeros
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5)


def test_logits_equal_timm_with_resized_biases(timm_and_ours):
    arch, reference, ours = timm_and_ours
    x = torch.rand(
        1, 3, *OTHER_SIZE, generator=torch.Generator().manual_seed(2))
    if arch.startswith('l') and arch != 'l':
        # timm's V1 attends over whatever tokens it gets; only the bias is
        # fixed to the 7x7 grid of a 224x224 input.
        tokens = -(-OTHER_SIZE[0] // 32) * -(-OTHER_SIZE[1] // 32)
        counts = {
            name: (tokens, tokens)
            for name, m in reference.named_modules()
            if hasattr(m, 'attention_biases')
        }
        assert len(counts) == {'l1': 1, 'l3': 4, 'l7': 8}[arch]
        other = copy.deepcopy(reference)
    else:
        # timm's V2 fixes its token grids at construction: build it for this
        # size with the reference model's weights but the attention biases.
        other = timm.create_model(VARIANTS[arch][0], img_size=OTHER_SIZE)
        weights = {
            k: v
            for k, v in reference.state_dict().items()
            if not k.endswith('attention_biases')
        }
        missing, unexpected = other.load_state_dict(weights, strict=False)
        assert all(k.endswith('attention_biases') for k in missing)
        assert not unexpected
        counts = {
            name: (getattr(m, 'N2', m.N), m.N)
            for name, m in other.named_modules()
            if hasattr(m, 'attention_biases')
        }
        assert len(counts) == {'s0': 5, 's1': 5, 's2': 9, 'l': 13}[arch]
    use_biases(other.eval(), resized_timm_biases(reference, counts))
    with torch.no_grad():
        expected = other(x)
        logits = ours(x, mode='tensor')
    assert expected.abs().max() > 1  # the comparison is not of zeros
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5)
