"""Bad inputs are refused with a message naming the problem, writing nothing.
"""
import os

import pytest
import torch
from checkpoint_sources import random_tensors
from safetensors.torch import save_file

from mmeformer.converters import ConversionError, convert_checkpoint


class RunsCode:
    """Unpickling this would call ``os.system``."""

    def __reduce__(self):
        return os.system, ('echo unpickled', )


@pytest.fixture
def official_l1(source_shapes):
    return random_tensors(source_shapes('official', 'l1'))


def refused(tmp_path, checkpoint, match, source='official', **kwargs):
    """Convert ``checkpoint`` (an object to save, or a path) and expect
    ConversionError; return its message. The output must not appear."""
    if isinstance(checkpoint, (str, os.PathLike)):
        src = checkpoint
    else:
        src = tmp_path / 'src.pth'
        torch.save(checkpoint, src)
    out = tmp_path / 'out' / 'out.pth'
    with pytest.raises(ConversionError, match=match) as info:
        convert_checkpoint(str(src), source, out=str(out), **kwargs)
    assert not out.parent.exists() or not os.listdir(out.parent)
    return str(info.value)


def test_unsafe_pickle(official_l1, tmp_path):
    message = refused(tmp_path, dict(model=official_l1, extra=RunsCode()),
                      'Refusing to read')
    assert 'weights_only=True' in message
    assert 'system' in message


def test_truncated_file(official_l1, tmp_path):
    src = tmp_path / 'src.pth'
    torch.save(dict(model=official_l1), src)
    data = src.read_bytes()
    src.write_bytes(data[:len(data) // 2])
    refused(tmp_path, src, 'truncated or corrupt')


def test_garbage_and_empty_files(tmp_path):
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint' * 64)
    refused(tmp_path, garbage, 'truncated or corrupt')
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    refused(tmp_path, empty, 'is empty')
    refused(tmp_path, tmp_path / 'absent.pth', 'No checkpoint file')


def test_truncated_safetensors(source_shapes, tmp_path):
    src = tmp_path / 'model.safetensors'
    save_file(random_tensors(source_shapes('timm', 's0')), str(src))
    data = src.read_bytes()
    src.write_bytes(data[:len(data) // 2])
    refused(tmp_path, src, 'not a readable safetensors file', source='timm')


def test_not_a_state_dict(tmp_path):
    refused(tmp_path, [torch.zeros(1)], 'holds a list')
    refused(tmp_path, dict(model=dict(epoch=3, weight=torch.zeros(1))),
            'entries that are not tensors')


def test_missing_keys(official_l1, tmp_path):
    del official_l1['network.2.1.mlp.fc1.weight']
    del official_l1['dist_head.bias']
    message = refused(tmp_path, dict(model=official_l1), 'missing keys')
    assert 'backbone.stages.1.blocks.1.mlp.fc1.conv.weight' in message
    assert 'head.dist_head.bias' in message


def test_unexpected_keys(official_l1, tmp_path):
    official_l1['network.0.0.mlp.extra.weight'] = torch.zeros(3)
    official_l1['pos_embed'] = torch.zeros(3)
    message = refused(tmp_path, dict(model=official_l1), 'unexpected keys')
    assert 'network.0.0.mlp.extra.weight' in message
    assert 'pos_embed' in message


def test_shape_mismatch(official_l1, tmp_path):
    official_l1['network.4.2.mlp.fc2.bias'] = torch.zeros(7)
    message = refused(tmp_path, dict(model=official_l1), 'shape mismatches')
    assert 'network.4.2.mlp.fc2.bias' in message and '(7,)' in message


def test_tensors_the_load_refuses_otherwise(official_l1, tmp_path):
    """Whatever else a strict load refuses is listed too; a legacy (1,)
    BatchNorm counter loads as torch loads it."""
    official_l1['network.0.0.mlp.norm1.num_batches_tracked'] = torch.ones(
        1, dtype=torch.long)
    official_l1['network.4.2.mlp.fc2.weight'] = torch.ones(
        official_l1['network.4.2.mlp.fc2.weight'].shape, dtype=torch.long)
    message = refused(tmp_path, dict(model=official_l1), 'other errors')
    assert 'backbone.stages.2.blocks.2.mlp.fc2.conv.weight' in message
    assert 'num_batches_tracked' not in message


def test_bias_table_of_another_grid(official_l1, tmp_path):
    official_l1['network.6.4.token_mixer.attention_biases'] = torch.zeros(
        8, 50)
    refused(tmp_path, dict(model=official_l1), "do not fit the source's")


def test_wrong_variant(official_l1, tmp_path):
    message = refused(
        tmp_path, dict(model=official_l1), 'does not hold', variant='l3')
    assert 'efficientformer_l1' in message
    refused(tmp_path, dict(model=official_l1), 'does not hold', variant='s0')
    refused(tmp_path, dict(model=official_l1), 'Unknown variant', variant='l2')


def test_wrong_source(source_shapes, tmp_path):
    timm = random_tensors(source_shapes('timm', 'l1'))
    refused(tmp_path, timm, 'Check --source')
    refused(tmp_path, dict(model=timm), 'Unknown source', source='deit')


def test_failure_keeps_existing_output(official_l1, tmp_path):
    out = tmp_path / 'out.pth'
    out.write_bytes(b'previous result')
    del official_l1['norm.weight']
    src = tmp_path / 'src.pth'
    torch.save(dict(model=official_l1), src)
    with pytest.raises(ConversionError):
        convert_checkpoint(str(src), 'official', out=str(out))
    assert out.read_bytes() == b'previous result'
    assert sorted(os.listdir(tmp_path)) == ['out.pth', 'src.pth']


def test_output_is_not_the_input(official_l1, tmp_path):
    src = tmp_path / 'src.pth'
    torch.save(dict(model=official_l1), src)
    with pytest.raises(ConversionError, match='is the input file'):
        convert_checkpoint(str(src), 'official', out=str(src))


def test_dense_parts_missing_or_not_fitting(source_shapes, tmp_path):
    tensors = random_tensors(source_shapes('official-det', 'l1'))
    message = refused(
        tmp_path,
        dict(state_dict=tensors),
        'missing keys',
        source='official-det')
    for part in ('neck.*', 'rpn_head.*', 'roi_head.*'):
        assert f'{part} (no tensor of this part)' in message
    tensors['neck.lateral_convs.1.conv.weight'] = torch.zeros(256, 64, 1, 1)
    tensors['rpn_head.rpn_conv.weight'] = torch.zeros(1)
    tensors['roi_head.bbox_head.fc_cls.weight'] = torch.zeros(1)
    message = refused(
        tmp_path,
        dict(state_dict=tensors),
        'shape mismatches',
        source='official-det')
    assert 'takes 64 input channels, the backbone gives 96' in message
