import os

import pytest
import torch

from mmeformer.converters import ConversionError, save_checkpoint


def test_save_creates_folders_and_is_reproducible(tmp_path):
    checkpoint = dict(state_dict=dict(weight=torch.arange(4.)), meta={})
    first = tmp_path / 'a' / 'b' / 'first.pth'
    second = tmp_path / 'second.pth'
    assert save_checkpoint(checkpoint, str(first)) == first.stat().st_size
    save_checkpoint(checkpoint, str(second))
    assert first.read_bytes() == second.read_bytes()
    assert os.listdir(first.parent) == ['first.pth']
    umask = os.umask(0)
    os.umask(umask)
    assert first.stat().st_mode & 0o777 == 0o666 & ~umask


def test_interrupted_save_leaves_nothing(tmp_path, monkeypatch):
    out = tmp_path / 'out.pth'
    out.write_bytes(b'old')

    def broken_save(obj, f):
        f.write(b'partial')
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, 'save', broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({}, str(out))
    assert out.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['out.pth']


def test_unwritable_folder(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_bytes(b'')
    with pytest.raises(ConversionError, match='Cannot write'):
        save_checkpoint({}, str(blocker / 'out.pth'))
