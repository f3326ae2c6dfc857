"""tools/demo.py end to end, shrunk to a few iterations on a small set."""
import os
import os.path as osp
import subprocess
import sys

import pytest

from mmeformer.demo import generate_shapes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'tools', 'demo.py')


def test_help():
    out = subprocess.run([sys.executable, DEMO, '--help'],
                         capture_output=True,
                         text=True,
                         check=True).stdout
    assert 'detection' in out and 'segmentation' in out
    assert '--iters' in out and '--work-dir' in out


@pytest.mark.parametrize('task,metric', [('detection', 'bbox mAP'),
                                         ('segmentation', 'mIoU')])
def test_short_demo(tmp_path, task, metric):
    data_root = tmp_path / 'shapes'
    generate_shapes(str(data_root), num_train=4, num_val=2)
    work_dir = tmp_path / 'work'
    result = subprocess.run([
        sys.executable, DEMO, task, '--iters', '2', '--work-dir',
        str(work_dir), '--data-root',
        str(data_root), '--cfg-options', 'default_hooks.logger.interval=1'
    ],
                            cwd=REPO,
                            capture_output=True,
                            text=True,
                            timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    # The runner's own log lines came through while it ran.
    assert 'Iter(train) [2/2]' in out
    assert 'Using the shapes set' in out
    report = out[out.index(f'Demo ({task}) finished'):]
    assert metric in report and 'drawn predictions' in report
    assert (work_dir / 'iter_2.pth').is_file()
    drawn_dir = report.split('drawn predictions')[1].split()[0]
    assert len(os.listdir(drawn_dir)) == 2
