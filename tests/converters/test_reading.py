import argparse
from collections import OrderedDict

import pytest
import torch

from mmeformer.converters import ConversionError
from mmeformer.converters.reading import extract_state_dict, read_checkpoint


def test_official_training_checkpoint(tmp_path):
    """The official training script stores its arguments with the weights."""
    src = tmp_path / 'checkpoint.pth'
    weights = dict(weight=torch.ones(2))
    torch.save(
        dict(
            model=weights,
            optimizer=dict(state={}, param_groups=[dict(lr=1e-3)]),
            epoch=299,
            args=argparse.Namespace(model='efficientformer_l1', lr=1e-3)), src)
    checkpoint = read_checkpoint(str(src))
    assert checkpoint['args'].model == 'efficientformer_l1'
    state_dict, container = extract_state_dict(checkpoint, str(src))
    assert container == 'model'
    assert torch.equal(state_dict['weight'], weights['weight'])


@pytest.mark.parametrize('checkpoint,container', [
    (dict(state_dict=dict(w=torch.ones(1)), meta=dict(epoch=1)), 'state_dict'),
    (dict(model=dict(w=torch.ones(1))), 'model'),
    (OrderedDict(w=torch.ones(1)), None),
])
def test_extract_state_dict(checkpoint, container):
    state_dict, found = extract_state_dict(checkpoint, 'file.pth')
    assert found == container and list(state_dict) == ['w']


def test_extract_refuses_empty_state_dicts():
    with pytest.raises(ConversionError, match='holds no tensors'):
        extract_state_dict(dict(state_dict={}), 'file.pth')
    with pytest.raises(ConversionError, match="checkpoint\\['model'\\] is a"):
        extract_state_dict(dict(model=[torch.ones(1)]), 'file.pth')
