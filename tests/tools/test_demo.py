"""tools/demo.py end to end, shrunk to a few iterations on a small set.

The two demos run side by side: each is a few processes one after another,
and one demo alone leaves a core idle while a tool imports the hosts.
"""
import os
import os.path as osp
import runpy
import subprocess
import sys
import tempfile

import pytest

from mmeformer.demo import generate_shapes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'tools', 'demo.py')


def test_help(monkeypatch, capsys):
    # In-process: the script only parses its arguments when run as main.
    parse_args = runpy.run_path(DEMO)['parse_args']
    monkeypatch.setattr(sys, 'argv', [DEMO, '--help'])
    with pytest.raises(SystemExit) as exit_info:
        parse_args()
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert 'detection' in out and 'segmentation' in out
    assert '--iters' in out and '--work-dir' in out


@pytest.fixture(scope='module')
def demos(tmp_path_factory):
    """Both demos, side by side, each with its own set and work dir."""
    runs = {}
    for task in ('detection', 'segmentation'):
        root = tmp_path_factory.mktemp(task)
        data_root = root / 'shapes'
        generate_shapes(str(data_root), num_train=4, num_val=2)
        output = tempfile.TemporaryFile('w+')
        proc = subprocess.Popen([
            sys.executable, DEMO, task, '--iters', '2', '--work-dir',
            str(root / 'work'), '--data-root',
            str(data_root), '--cfg-options', 'default_hooks.logger.interval=1'
        ],
                                cwd=REPO,
                                stdout=output,
                                stderr=subprocess.STDOUT,
                                text=True)
        runs[task] = proc, output, root / 'work'
    results = {}
    for task, (proc, output, work_dir) in runs.items():
        proc.wait(timeout=300)
        output.seek(0)
        results[task] = proc.returncode, output.read(), work_dir
        output.close()
    return results


@pytest.mark.parametrize('task,metric', [('detection', 'bbox mAP'),
                                         ('segmentation', 'mIoU')])
def test_short_demo(demos, task, metric):
    returncode, out, work_dir = demos[task]
    assert returncode == 0, out
    # The runner's own log lines came through while it ran.
    assert 'Iter(train) [2/2]' in out
    assert 'Using the shapes set' in out
    report = out[out.index(f'Demo ({task}) finished'):]
    assert metric in report and 'drawn predictions' in report
    assert (work_dir / 'iter_2.pth').is_file()
    drawn_dir = report.split('drawn predictions')[1].split()[0]
    assert len(os.listdir(drawn_dir)) == 2
