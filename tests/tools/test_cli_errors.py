"""The tools facing common mistakes, as users run them.

A checkpoint that does not fit the model, ``--resume`` with nothing to
resume, a config that does not exist or does not parse, a ``--cfg-options``
item without ``=``, out_indices the neck does not take, a truncated or
corrupt checkpoint (in every tool that reads one), ``--launcher`` without
its launcher, an input size the model cannot take and bad options of every
tool each end in a short message that names the file or key and the fix,
before anything is built or written; a refused run exits with 1, a usage
error with 2, and no run shows the hosts' pkg_resources warnings. A dense
config's intended start from an ImageNet classifier is one line, and the
run's environment report is true on a CPU machine. The runs share one
interpreter (see tool_runs.run_tools_in_one_process).
"""
import glob
import os.path as osp
import re

import onnx
import pytest
import torch
from onnx import TensorProto, helper
from tiny_datasets import make_ade20k
from tool_runs import (REPO, SEGMENTATION, assert_ok, run_tools_in_one_process,
                       write_config)

from mmeformer.models import EfficientFormerV2
from mmeformer.runtime import LAUNCHER_VARIABLES

# All of them share the runs of the `refused` fixture: some 35 tool runs and
# a one-iteration training in one interpreter, about two minutes.
pytestmark = pytest.mark.slow

CONVERTER = 'tools/model_converters/efficientformer_to_mmeformer.py'
SEARCH_CONFIG = osp.join(REPO, 'configs', 'search',
                         'eformerv2_supernet_shapes.py')

#: The exit status of each refused run: 1 for a run that cannot start
#: (missing or unreadable files, sizes, the launcher's environment), 2 for a
#: usage error (a bad option value, options that do not go together).
EXIT_STATUS = dict(
    other_variant=1,
    timm_load_from=1,
    no_config=1,
    syntax=1,
    no_equals=2,
    out_indices=1,
    truncated=1,
    launcher_pytorch=1,
    launcher_slurm=1,
    no_data=1,
    no_checkpoint=1,
    corrupt=1,
    flops_too_small=1,
    flops_three_sizes=2,
    export_truncated=1,
    backend_truncated=1,
    backend_corrupt=1,
    backend_other_variant=1,
    quantize_truncated=1,
    quantize_corrupt=1,
    benchmark_too_small=1,
    benchmark_dense_too_small=1,
    search_not_a_table=1,
    convert_bad_size=2,
    convert_missing=1,
    teacher_unknown_model=2,
    shapes_existing_folder=1,
    shapes_sizes_clash=2,
    demo_not_a_shapes_set=1,
    demo_zero_iters=2,
)


def assert_refused(proc, *fragments, max_lines=4):
    """A non-zero exit with a short message holding every fragment, and
    nothing of a run (environment report, traceback). The message is what
    follows ``<tool>: error:``; the hosts' import warnings come before."""
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr
    assert 'System environment' not in proc.stdout + proc.stderr
    found = re.search(r'^\S+\.py: error: ', proc.stderr, re.MULTILINE)
    assert found, proc.stderr
    message = proc.stderr[found.start():]
    for fragment in fragments:
        assert str(fragment) in message, message
    assert len(message.strip().splitlines()) <= max_lines, message


def write_segmentor_file(path, size=64):
    """An ONNX file with the input and output of an exported segmentor
    (an Identity between them): the deployment tools read the checkpoint
    before they run the file."""
    node = helper.make_node('Identity', ['input'], ['seg_logits'])
    ports = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                      [1, 3, size, size])
        for name in ('input', 'seg_logits')
    ]
    graph = helper.make_graph([node], 'segmentor', ports[:1], ports[1:])
    onnx.save(
        helper.make_model(
            graph, opset_imports=[helper.make_opsetid('', 17)], ir_version=8),
        str(path))


def save_backbone(path, backbone, prefix='backbone.', meta=None):
    torch.save(
        dict(
            meta=meta or {},
            state_dict={
                prefix + k: v
                for k, v in backbone.state_dict().items()
            }), path)


@pytest.fixture(scope='module')
def seg(tmp_path_factory):
    """A folder with a tiny ADE20K and a Semantic FPN V2-S0 config."""
    root = tmp_path_factory.mktemp('seg')
    data = make_ade20k(str(root / 'ade'))
    config = write_config(root / 'seg.py', SEGMENTATION, data)
    return root, config


@pytest.fixture(scope='module')
def refused(seg):
    """The tools given the common mistakes, by name of the mistake, a
    test run with --partial-load, and the dense start (see
    :func:`dense_start`), in one interpreter."""
    root, config = seg
    s1 = root / 's1.pth'
    save_backbone(s1, EfficientFormerV2('s1'))
    # A few tensors of an EfficientFormer-L1 in timm's names.
    timm = root / 'timm_l1.pth'
    torch.save(
        {
            'stem.conv1.weight': torch.zeros(24, 3, 3, 3),
            'stem.norm1.weight': torch.zeros(24),
            'stages.0.blocks.0.ls1.gamma': torch.zeros(48),
        }, timm)
    broken = root / 'broken.py'
    broken.write_text(f"_base_ = '{config}'\nmodel = dict(\n"
                      '    backbone=dict(drop_path_rate=0.1)\n'
                      'train_cfg = dict(max_iters=1)\n')
    truncated = root / 'truncated.pth'
    save_backbone(truncated, EfficientFormerV2('s0'))
    truncated.write_bytes(truncated.read_bytes()[:100000])
    # Neither a zip nor a pickle.
    corrupt = root / 'corrupt.pth'
    corrupt.write_bytes(b'not a checkpoint\n' * 64)
    segmentor = root / 'segmentor.onnx'
    write_segmentor_file(segmentor)
    missing_config = osp.join(REPO, 'configs', 'segmentation',
                              'fpn_eformerv2_s0_ade20k.py')
    work = root / 'work'
    missing = root / 'none.pth'
    runs = dict(
        other_variant=('test.py', config, s1),
        timm_load_from=('train.py', config, '--cfg-options',
                        f'load_from={timm}'),
        no_config=('train.py', missing_config),
        syntax=('train.py', broken),
        no_equals=('train.py', config, '--cfg-options', 'foo'),
        out_indices=('train.py', config, '--cfg-options',
                     'model.backbone.out_indices=[0,1,2]'),
        truncated=('test.py', config, truncated),
        launcher_pytorch=('train.py', config, '--launcher', 'pytorch'),
        launcher_slurm=('test.py', config, s1, '--launcher', 'slurm'),
        no_data=('train.py', config, '--cfg-options',
                 f'train_dataloader.dataset.data_root={root / "no_ade"}'),
        no_checkpoint=('test.py', config, missing),
        corrupt=('test.py', config, corrupt),
        backend_truncated=('deployment/test_backend.py', config, segmentor,
                           '--checkpoint', truncated),
        backend_corrupt=('deployment/test_backend.py', config, segmentor,
                         '--checkpoint', corrupt),
        backend_other_variant=('deployment/test_backend.py', config, segmentor,
                               '--checkpoint', s1),
    )
    export = root / 'export.onnx'
    not_a_table = root / 'table.json'
    not_a_table.write_text('{}')
    int8 = root / 'int8.xml'
    speed = root / 'speed.md'
    # The other tools, which take no --work-dir.
    other_tools = dict(
        flops_too_small=('analysis_tools/get_flops.py', config, '--shape', 16,
                         24),
        flops_three_sizes=('analysis_tools/get_flops.py', config, '--shape',
                           64, 64, 64),
        export_truncated=('deployment/pytorch2onnx.py', config, '--checkpoint',
                          truncated, '--output-file', export),
        convert_bad_size=('model_converters/efficientformer_to_mmeformer.py',
                          s1, '--source', 'official', '--attn-ref-size',
                          'big'),
        convert_missing=('model_converters/efficientformer_to_mmeformer.py',
                         missing, '--source', 'official'),
        teacher_unknown_model=('model_converters/timm_teacher_to_mmeformer.py',
                               s1, '--model', 'regnety_16o'),
        shapes_existing_folder=('dataset_converters/make_shapes.py',
                                '--out-dir', root / 'ade'),
        shapes_sizes_clash=('dataset_converters/make_shapes.py', '--out-dir',
                            root / 'new_shapes', '--img-size', 64),
        demo_not_a_shapes_set=('demo.py', 'segmentation', '--data-root',
                               root / 'ade', '--work-dir', work),
        demo_zero_iters=('demo.py', 'segmentation', '--iters', 0),
        quantize_truncated=('deployment/quantize.py', config, segmentor, int8,
                            '--checkpoint', truncated),
        quantize_corrupt=('deployment/quantize.py', config, segmentor, int8,
                          '--checkpoint', corrupt),
        benchmark_too_small=('analysis_tools/benchmark.py', '--variants', 's0',
                             'l1', '--cls-size', 16, 24, '--out', speed),
        benchmark_dense_too_small=('analysis_tools/benchmark.py', '--variants',
                                   'l1', '--models', 'dense', '--dense-size',
                                   800, 24, '--out', speed),
        search_not_a_table=('search.py', SEARCH_CONFIG, missing,
                            '--latency-table', not_a_table, '--max-latency', 5,
                            '--work-dir', work),
    )
    # Last, as they build a Runner: the opt-out of the fit check, and a
    # training started from a classifier.
    partial = ('test.py', config, s1, '--partial-load', '--work-dir',
               root / 'partial')
    dense_config, dense_work = prepare_dense_start(root)
    with pytest.MonkeyPatch.context() as env:
        # Warnings Python hides by default show, so that the pkg_resources
        # warnings of setuptools < 80 (DeprecationWarning) are shown as
        # those of setuptools 80 and 81 (UserWarning) are.
        env.setenv('PYTHONWARNINGS', 'default')
        for name in sum(LAUNCHER_VARIABLES.values(), ()):
            env.delenv(name, raising=False)
        *procs, partial, dense = run_tools_in_one_process(
            *[run + ('--work-dir', work) for run in runs.values()],
            *other_tools.values(),
            partial, ('train.py', dense_config, '--resume', '--work-dir',
                      dense_work, '--cfg-options', 'train_cfg.max_iters=1'),
            cwd=str(root))
    for path in (work, export, int8, speed, root / 'new_shapes'):
        assert not path.exists(), f'{path}: nothing may be written'
    return dict(
        zip(list(runs) + list(other_tools), procs),
        partial=partial,
        dense_start=(dense_work, dense),
        config=config,
        s1=s1,
        timm=timm,
        broken=broken,
        truncated_file=truncated,
        corrupt_file=corrupt,
        missing_config=missing_config)


def test_a_checkpoint_that_does_not_fit_is_refused(seg, refused):
    """Issue 12, item 1: test.py and load_from; --partial-load opts out."""
    config, s1, timm = refused['config'], refused['s1'], refused['timm']
    assert_refused(
        refused['other_variant'],
        f'{s1} does not fit the model of {config}',
        'shape mismatches (',
        'missing keys (',
        'It holds an efficientformerv2_s1 backbone.',
        'evaluate a checkpoint of this config\'s model',
        '--partial-load',
        max_lines=20)
    assert_refused(
        refused['timm_load_from'],
        f'{timm} does not fit the model of {config}',
        f'convert it first, with python {CONVERTER} {timm} '
        '--source timm',
        'set load_from to a checkpoint',
        max_lines=20)

    assert_ok(refused['partial'])
    assert glob.glob(str(seg[0] / 'partial' / '*' / '*.json'))


def test_common_mistakes_are_one_clear_message(refused):
    """Issue 12, item 3: each in a few lines, nothing built or written."""
    assert_refused(refused['no_config'],
                   f"{refused['missing_config']}: no such config file",
                   'Did you mean', 'fpn_eformerv2_s0_ade20k_40k.py')
    assert_refused(refused['syntax'], f"{refused['broken']}, line ",
                   'syntax error')
    assert refused['no_equals'].returncode == 2
    assert_refused(
        refused['no_equals'], "argument --cfg-options: 'foo' is "
        'not KEY=VALUE',
        max_lines=3)
    assert_refused(
        refused['out_indices'],
        'the backbone gives 3 feature maps with [32, 48, 96] '
        'channels (model.backbone.out_indices=[0, 1, 2]), but '
        'model.neck.in_channels is [32, 48, 96, 176]',
        'model.neck.in_channels="[32,48,96]"')
    assert_refused(refused['truncated'],
                   f"{refused['truncated_file']} cannot be read", 'truncated')


def test_setup_errors_exit_1_and_usage_errors_2(refused):
    """Issue 18, item 8: every tool, every kind of mistake."""
    for name, status in EXIT_STATUS.items():
        proc = refused[name]
        assert proc.returncode == status, (name, proc.stderr[-2000:])
        assert 'Traceback' not in proc.stderr, (name, proc.stderr)
        # argparse's usage errors show the usage; refused runs do not.
        assert ('usage:' in proc.stderr) == (status == 2), (name, proc.stderr)


def test_a_launcher_flag_without_its_launcher_names_the_command(refused):
    """Issue 18: --launcher pytorch from a plain shell was KeyError 'RANK'."""
    assert_refused(
        refused['launcher_pytorch'],
        '--launcher pytorch needs the environment that torchrun sets',
        'RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT are not set',
        'bash tools/dist_train.sh CONFIG NUM_PROCESSES',
        'torchrun --nproc-per-node NUM_PROCESSES tools/train.py CONFIG '
        '--launcher pytorch', 'leave --launcher out')
    assert_refused(
        refused['launcher_slurm'],
        '--launcher slurm needs the environment that srun sets',
        'bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT',
        'python tools/test.py CONFIG CHECKPOINT --launcher slurm')


def test_missing_data_and_checkpoints_are_named(refused):
    assert_refused(
        refused['no_data'], 'no_ade does not exist (train_dataloader.dataset.'
        'data_root)')
    assert_refused(refused['no_checkpoint'],
                   'none.pth does not exist (the checkpoint to test)')


def test_sizes_the_model_cannot_take_are_refused(refused):
    """Issue 18: get_flops.py counted a 16x24 input (the counter traces the
    model, and a trace skips the backbone's own check)."""
    assert_refused(
        refused['flops_too_small'], '--shape: input size 16x24 is too small: '
        'EfficientFormerV2 takes inputs of at least 32x32; pass --shape 32 '
        'or more')
    assert_refused(
        refused['flops_three_sizes'],
        '--shape takes one size or a height and a width',
        max_lines=1)
    assert_refused(
        refused['benchmark_too_small'],
        '--cls-size: input size 16x24 is too small: EfficientFormerV2 takes '
        'inputs of at least 32x32; pass --cls-size 32 or more',
        max_lines=1)
    assert_refused(
        refused['benchmark_dense_too_small'],
        '--dense-size: input size 800x24 is too small: EfficientFormer '
        'takes inputs of at least 32x32; pass --dense-size 32 or more',
        max_lines=1)
    for name in ('benchmark_too_small', 'benchmark_dense_too_small'):
        # Refused before the table's header.
        assert '| variant |' not in refused[name].stdout


def test_search_refuses_a_file_that_is_not_a_latency_table(refused):
    assert_refused(
        refused['search_not_a_table'],
        'is not a latency table (no "format": "mmeformer latency table" '
        'field); make one with python tools/analysis_tools/latency_table.py '
        'build',
        max_lines=1)


def error_message(proc):
    """What follows ``<tool>: error:``."""
    return proc.stderr[proc.stderr.index(': error: ') + 9:].strip()


def test_the_export_reads_a_checkpoint_as_test_does(refused):
    """Issue 18: the same truncated file gave two tracebacks in
    pytorch2onnx.py and one line in test.py; now the same line."""
    assert_refused(refused['export_truncated'],
                   f"{refused['truncated_file']} cannot be read")
    assert error_message(refused['export_truncated']) == error_message(
        refused['truncated'])


def test_the_deployment_tools_read_a_checkpoint_as_test_does(refused):
    """Issue 18: test_backend.py and quantize.py called a truncated file one
    that does not fit, and a file that is not a checkpoint at all ended in
    a traceback; now each is test.py's line."""
    assert_refused(
        refused['corrupt'],
        f"Refusing to read {refused['corrupt_file']}",
        'truncated or corrupt',
        max_lines=1)
    for tool in ('backend', 'quantize'):
        for mistake in ('truncated', 'corrupt'):
            proc = refused[f'{tool}_{mistake}']
            assert_refused(proc, max_lines=1)
            assert error_message(proc) == error_message(refused[mistake])
    config, s1 = refused['config'], refused['s1']
    assert_refused(
        refused['backend_other_variant'],
        f'{s1} does not fit the model of {config}',
        'shape mismatches (',
        'It holds an efficientformerv2_s1 backbone.',
        'Fix: use the checkpoint trained (or converted) for this config.',
        max_lines=20)
    assert '--partial-load' not in refused['backend_other_variant'].stderr


def test_the_other_tools_say_why(refused):
    for name, fragment in (
        ('convert_bad_size', "argument --attn-ref-size: SIZE must be one "
         "size (800), height x width ('800x1333')"),
        ('convert_missing', 'No checkpoint file at '),
        ('teacher_unknown_model', '--model regnety_16o: timm has no such '
         'architecture; did you mean regnety_160'),
        ('shapes_existing_folder', 'ade exists and is not a shapes set'),
        ('shapes_sizes_clash', 'max_size=80 does not fit into 64x64 '
         'images'),
        ('demo_not_a_shapes_set', 'ade exists and is not a shapes set'),
        ('demo_zero_iters', 'argument --iters: 0 is not 1 or more'),
    ):
        stderr = refused[name].stderr
        assert fragment in stderr, (name, stderr)
        error_lines = [
            line for line in stderr.splitlines() if 'error:' in line
        ]
        assert len(error_lines) == 1, (name, stderr)


def test_no_run_shows_the_hosts_pkg_resources_warnings(refused):
    """Issue 22: five per run, whatever the tool; the runs show every
    warning (PYTHONWARNINGS=default), and those of the hosts'
    pkg_resources imports are hidden by the tools."""
    procs = [refused[name] for name in EXIT_STATUS]
    procs += [refused['partial'], refused['dense_start'][1]]
    for proc in procs:
        assert 'pkg_resources' not in proc.stdout + proc.stderr, (
            proc.args, proc.stderr[-3000:])


def prepare_dense_start(root):
    """A dense config started from a converted 224 classifier, and a work
    dir that does not exist."""
    config = write_config(
        root / 'seg_pretrained.py',
        SEGMENTATION,
        str(root / 'ade'),
        pretrained=True)
    (root / 'checkpoints').mkdir()
    save_backbone(
        root / 'checkpoints' / 'efficientformerv2_s0_in1k.pth',
        EfficientFormerV2('s0', final_norm=True),
        meta=dict(attn_ref_size=[224, 224]))
    return config, root / 'mistyped'


@pytest.fixture(scope='module')
def dense_start(refused):
    """A dense config started from a converted 224 classifier, with
    ``--resume`` in a work dir that does not exist: the design card's
    command after a mistyped --work-dir."""
    work, proc = refused['dense_start']
    assert_ok(proc)
    return work, proc.stdout + proc.stderr


def test_resume_with_nothing_to_resume_warns_first(dense_start):
    """Issue 12, item 2: mmengine starts afresh; the first line says so."""
    work, log = dense_start
    warning = (f'--resume: {work} does not exist, so training starts from '
               'scratch')
    assert warning in log
    assert log.index(warning) < log.index('System environment')
    assert osp.isfile(work / 'iter_1.pth')


def test_the_environment_report_is_true_and_short(dense_start):
    """Issue 12, item 6."""
    _, log = dense_start
    report = log[log.index('System environment'):log.index('Config:')]
    runtime = report[report.index('Runtime environment'):]
    assert 'dist_cfg' not in runtime and 'GPU number' not in runtime
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert f'Device: {device}' in runtime
    assert 'Processes: 1' in runtime
    assert 'Build settings' not in report
    assert max(len(line) for line in report.splitlines()) < 400
    assert 'mmeformer:' in report


def test_the_dense_start_from_a_classifier_is_one_line(dense_start):
    """Issue 12, item 7: quiet, one line; no mmengine mismatch warnings."""
    _, log = dense_start
    lines = [line for line in log.splitlines() if 'start at zero' in line]
    assert len(lines) == 1
    assert ('attention-bias tables of checkpoints/'
            'efficientformerv2_s0_in1k.pth were learned for 224x224 inputs '
            'and start at zero for attn_ref_size 512x512') in lines[0]
    assert '--attn-ref-size 512' in lines[0]
    for loud in ('size mismatch', 'missing keys in source',
                 'unexpected key in source'):
        assert loud not in log
