"""tools/demo.py end to end, shrunk to a few iterations on a small set.

The two demos run side by side: each is a few processes one after another,
and one demo alone leaves a core idle while a tool imports the hosts.
"""
import glob
import json
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


#: Per task: the report's metric lines, their keys in the evaluation's
#: json and their upper bound (COCO fractions, mmseg percentages).
METRICS = {
    'detection': ({
        'bbox mAP': 'coco/bbox_mAP',
        'bbox mAP@0.5': 'coco/bbox_mAP_50',
        'segm mAP': 'coco/segm_mAP',
        'segm mAP@0.5': 'coco/segm_mAP_50',
    }, 1),
    'segmentation': ({
        'mIoU (%)': 'mIoU'
    }, 100),
}


def reported_metrics(report, names):
    """The numbers of the report's ``<name> <value>`` lines."""
    values = {}
    for line in report.splitlines():
        for name in names:
            rest = line.strip()[len(name):].split()
            if line.strip().startswith(name) and len(rest) == 1:
                values[name] = float(rest[0])
    return values


@pytest.mark.slow
@pytest.mark.parametrize('task', ['detection', 'segmentation'])
def test_short_demo(demos, task):
    returncode, out, work_dir = demos[task]
    assert returncode == 0, out
    # The runner's own log lines came through while it ran.
    assert 'Iter(train) [2/2]' in out
    assert 'Using the shapes set' in out
    report = out[out.index(f'Demo ({task}) finished'):]
    assert 'drawn predictions' in report
    assert (work_dir / 'iter_2.pth').is_file()
    drawn_dir = report.split('drawn predictions')[1].split()[0]
    assert len(os.listdir(drawn_dir)) == 2

    # The reported numbers are those tools/test.py wrote, each in range.
    names, high = METRICS[task]
    reported = reported_metrics(report, names)
    assert reported.keys() == names.keys(), report
    written, = glob.glob(str(work_dir / 'test' / '*' / '*.json'))
    with open(written) as f:
        evaluated = json.load(f)
    for name, key in names.items():
        assert reported[name] == round(evaluated[key], 3), (name, report)
        assert 0 <= reported[name] <= high, (name, report)
