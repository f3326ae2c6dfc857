"""mmeformer.latency.blocks: a table's blocks are the network's modules."""
import pytest
import torch

from mmeformer.latency import (arch_blocks, block_input_shape, build_block,
                               build_network, parse_key, space_blocks,
                               v1_blocks)
from mmeformer.models.backbones import EfficientFormerV2Space
from mmeformer.testing import randomize_weights


def randomize(model, seed=0):
    """BatchNorm statistics, layer scales and attention biases that matter."""
    generator = torch.Generator().manual_seed(seed)
    for name, tensor in model.state_dict().items():
        if name.endswith(('running_mean', 'bias')):
            tensor.copy_(0.2 * torch.randn(tensor.shape, generator=generator))
        elif name.endswith(('running_var', 'ls1.weight', 'ls2.weight')):
            tensor.copy_(0.1 +
                         0.4 * torch.rand(tensor.shape, generator=generator))
        elif name.endswith('attn_bias.table'):
            tensor.copy_(torch.randn(tensor.shape, generator=generator))
    return model


def test_default_space_blocks():
    space = EfficientFormerV2Space.default()
    blocks = space_blocks(space, with_head=True)
    kinds = {
        k: sum(b.kind == k for b in blocks)
        for k in ('stem', 'down', 'ffn', 'attn', 'head')
    }
    # 3, 6, 14 and 15 widths; 4 MLP ratios; attention in stages 2 and 3.
    assert kinds == dict(
        stem=3,
        down=3 * 6 + 6 * 14 + 14 * 15,
        ffn=(3 + 6 + 14 + 15) * 4,
        attn=(14 + 15) * 4,
        head=15)
    assert len({b.key for b in blocks}) == len(blocks)
    assert all(parse_key(b.key) == b for b in blocks)


def test_blocks_in_a_row_are_the_network():
    size = (64, 96)
    arch = dict(
        depths=[1, 1, 2, 1],
        channels=[8, 16, 24, 32],
        num_attn_blocks=[1, 1],
        mlp_ratios=[[2], [2], [2, 2], [2]])
    network = randomize(build_network(arch, size, with_head=True))
    blocks = arch_blocks(arch, with_head=True)
    assert [b.key for b in blocks] == [
        'stem:8', 'ffn0:8x2', 'down1:8-16', 'ffn1:16x2', 'down2:16-24',
        'ffn2:24x2', 'attn2:24x2', 'down3:24-32', 'attn3:32x2', 'head:32'
    ]
    backbone = network.backbone
    sources = [backbone.stem]
    for stage in backbone.stages:
        sources += [stage.downsample] if stage.downsample else []
        sources += list(stage.blocks)
    modules = [build_block(b, size) for b in blocks]
    for module, source in zip(modules, sources):
        module.load_state_dict(source.state_dict())
    modules[-1].norm.load_state_dict(backbone.norm.state_dict())
    modules[-1].head.load_state_dict(network.head.state_dict())
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        out = x
        for block, module in zip(blocks, modules):
            assert tuple(out.shape) == block_input_shape(block, size)
            out = module(out)
        expected = network(x, mode='tensor')
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_v1_blocks_are_the_published_networks_distinct_blocks(v1_entries):
    blocks = v1_blocks(with_head=True)
    # Stem, downsamples, the Meta4D pooling blocks of every stage at the
    # stage's width, the Meta3D blocks (all of L7's last stage) and heads.
    assert sorted(b.key for b in blocks) == sorted(v1_entries)
    assert all(parse_key(b.key) == b for b in blocks)
    headless = [b.key for b in v1_blocks(with_head=False)]
    assert headless == [b.key for b in blocks if b.kind != 'head']
    assert parse_key('v1.attn3:448x4').describe() == (
        'the V1 attention block (Meta3D) of stage 3 at width 448 with MLP '
        'ratio 4')
    assert parse_key('v1.pool1:96x4').describe().startswith(
        'the V1 pooling block (Meta4D) of stage 1')
    # A family's kinds are not the other's.
    for key in ('pool2:96x4', 'v1.ffn2:224x4', 'v1.x:3'):
        with pytest.raises(ValueError, match='not a latency-table block'):
            parse_key(key)


def test_v1_blocks_in_a_row_are_the_network():
    size = (64, 96)
    network = randomize_weights(build_network('l1', size, with_head=True))
    blocks = arch_blocks('l1', with_head=True)
    runs = [('v1.stem:48', 1), ('v1.pool0:48x4', 3), ('v1.down1:48-96', 1),
            ('v1.pool1:96x4', 2), ('v1.down2:96-224', 1),
            ('v1.pool2:224x4', 6), ('v1.down3:224-448', 1),
            ('v1.pool3:448x4', 3), ('v1.attn3:448x4', 1), ('v1.head:448', 1)]
    assert [b.key for b in blocks] == [k for k, n in runs for _ in range(n)]
    backbone = network.backbone
    sources = [backbone.stem]
    for stage in backbone.stages:
        sources += [stage.downsample] if stage.downsample else []
        sources += list(stage.blocks)
    modules = [build_block(b, size) for b in blocks]
    for module, source in zip(modules, sources):
        module.load_state_dict(source.state_dict())
    modules[-1].norm.load_state_dict(backbone.norm.state_dict())
    modules[-1].head.load_state_dict(network.head.state_dict())
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        out = x
        for block, module in zip(blocks, modules):
            assert tuple(out.shape) == block_input_shape(block, size)
            out = module(out)
        expected = network(x, mode='tensor')
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
