"""tools/analysis_tools/benchmark.py: the int8 lanes time NNCF-quantized
static files beside the fp32 ones."""
import pytest
from tool_runs import run_main


def test_int8_lanes(tmp_path):
    """ONNX Runtime and OpenVINO each time a quantized file (its deviation is
    that of int8, not of float rounding) and the best int8 cell states its
    ratio over the best fp32 path; ort-dynamic has no int8 lane."""
    table = tmp_path / 'table.md'
    assert run_main(
        'analysis_tools/benchmark.py',
        '--variants',
        's0',
        '--models',
        'classifier',
        '--cls-size',
        '64',
        '64',
        '--runtimes',
        'ort-static',
        'ort-dynamic',
        'openvino',
        '--precisions',
        'fp32',
        'int8',
        '--int8-samples',
        '2',
        '--repeats',
        '1',
        '--warmup',
        '0',
        '--threads',
        '1',
        '--out',
        str(table),
        cwd=tmp_path) is None
    header, _, row = table.read_text().splitlines()[:3]
    cells = dict(
        zip(header.strip('| ').split(' | '),
            row.strip('| ').split(' | ')))
    assert 'ort-dynamic int8' not in cells
    for lane in ('ort-static', 'ort-dynamic', 'openvino'):
        deviation = float(cells[f'{lane} fp32'].split('(')[1].rstrip(')'))
        assert deviation < 1e-4
    for lane in ('ort-static', 'openvino'):
        deviation = float(cells[f'{lane} int8'].split('(')[1].rstrip(')'))
        # Quantized: far from float rounding, yet an approximation.
        assert 1e-4 < deviation < 0.5
    assert cells['best int8'].endswith('x best fp32)')
    assert 'x best fp32' not in cells['best fp32']


@pytest.mark.parametrize('args', [('--int8-samples', '0'),
                                  ('--precisions', 'int4')])
def test_usage_errors(args, tmp_path):
    assert run_main('analysis_tools/benchmark.py', *args, cwd=tmp_path) == '2'
