"""The search path as a table (CSV and Markdown) and a plot of accuracy
against latency."""
import csv
import io
import json
from typing import List, Optional, Sequence

from mmeformer.utils import atomic_output, atomic_write_bytes
from .greedy import Measure

__all__ = ['path_rows', 'write_path_csv', 'write_path_markdown', 'plot_path']

COLUMNS = ('step', 'action', 'top1', 'latency_ms', 'params_m', 'mes',
           'measured_ms', 'arch')


def path_rows(path: Sequence[Measure],
              measured: Optional[dict] = None) -> List[dict]:
    """One row per step; ``measured`` maps step indices to measured ms."""
    measured = measured or {}
    return [
        dict(
            step=i,
            action=step.action or 'largest subnet',
            top1=f'{step.accuracy:.2f}',
            latency_ms=f'{step.latency_ms:.3f}',
            params_m=f'{step.params_m:.3f}',
            mes=f'{step.mes:.2f}',
            measured_ms=(f'{measured[i]:.3f}' if i in measured else ''),
            arch=json.dumps(step.arch, separators=(',', ':')))
        for i, step in enumerate(path)
    ]


def write_path_csv(rows: List[dict], path: str) -> None:
    """Write the rows as CSV, atomically."""
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS, lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, text.getvalue().encode())


def write_path_markdown(rows: List[dict],
                        path: str,
                        title: str = 'Search path') -> None:
    """Write the rows (without the arch column) as a Markdown table."""
    columns = COLUMNS[:-1]
    lines = [
        f'# {title}', '', '| ' + ' | '.join(columns) + ' |',
        '|' + '---|' * len(columns)
    ]
    lines += [
        '| ' + ' | '.join(str(row[c]) for c in columns) + ' |' for row in rows
    ]
    atomic_write_bytes(path, ('\n'.join(lines) + '\n').encode())


def plot_path(path: Sequence[Measure],
              png: str,
              max_latency: Optional[float] = None,
              measured_ms: Optional[float] = None,
              title: str = 'Fine-grained joint search') -> None:
    """Plot top-1 against predicted latency along the path, as a PNG,
    with the found arch's measured latency if given."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.plot([s.latency_ms for s in path], [s.accuracy for s in path],
            'o-',
            ms=3,
            label='search path (predicted latency)')
    ax.plot(path[0].latency_ms, path[0].accuracy, 'ks', label='largest')
    ax.plot(path[-1].latency_ms, path[-1].accuracy, 'r*', ms=12, label='found')
    if measured_ms is not None:
        ax.plot(
            measured_ms,
            path[-1].accuracy,
            'rx',
            ms=9,
            label='found, measured')
    if max_latency is not None:
        ax.axvline(max_latency, color='grey', ls='--', label='budget')
    ax.set_xlabel('latency (ms)')
    ax.set_ylabel('top-1 on the scoring subset (%)')
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_output(png) as tmp:
        fig.savefig(tmp, format='png')
    plt.close(fig)
