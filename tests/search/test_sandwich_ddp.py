"""SandwichDistributedDataParallel on two gloo processes: one step moves
the weights by the mean over the processes of every subnet's gradient."""
import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from mmpretrain.structures import DataSample

WORKER = textwrap.dedent('''
    import json
    import random
    import sys

    import torch
    import torch.distributed as dist
    from mmengine.optim import OptimWrapper
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    import mmeformer.search  # noqa: F401
    from mmeformer.search import SandwichDistributedDataParallel
    from mmeformer.testing import randomize_weights

    work = sys.argv[1]
    dist.init_process_group('gloo')
    rank = dist.get_rank()
    with open(f'{work}/model.json') as f:
        cfg = json.load(f)
    # As the build_supernet_classifier fixture builds it.
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg)
    model.init_weights()
    randomize_weights(model, 0).train()
    ddp = SandwichDistributedDataParallel(
        model, device_ids=None, broadcast_buffers=False)
    data = torch.load(f'{work}/batch{rank}.pth')
    batch = dict(
        inputs=list(data['inputs']),
        data_samples=[
            DataSample().set_gt_label(int(label))
            for label in data['labels']
        ])
    # Another random stream on each rank.
    random.seed(10 + rank)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1.))
    ddp.train_step(batch, optim)
    torch.save(
        dict(
            archs=model.last_archs,
            params={n: p.detach() for n, p in model.named_parameters()}),
        f'{work}/rank{rank}.pth')
    dist.destroy_process_group()
''')


def rank_batch(rank, size=33):
    generator = torch.Generator().manual_seed(rank)
    inputs = torch.randint(
        0, 256, (4, 3, size, size + 4), generator=generator).to(torch.uint8)
    labels = torch.randint(0, 4, (4, ), generator=generator)
    return inputs, labels


def as_data(inputs, labels):
    return dict(
        inputs=list(inputs),
        data_samples=[
            DataSample().set_gt_label(int(label)) for label in labels
        ])


@pytest.mark.slow
def test_a_step_on_two_processes_takes_the_mean_of_their_gradients(
        tmp_path, supernet_cfg, build_supernet_classifier, sandwich_gradients):
    (tmp_path / 'model.json').write_text(json.dumps(supernet_cfg))
    (tmp_path / 'worker.py').write_text(WORKER)
    for rank in (0, 1):
        inputs, labels = rank_batch(rank)
        torch.save(
            dict(inputs=inputs, labels=labels), tmp_path / f'batch{rank}.pth')
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS='1', OMP_WAIT_POLICY='PASSIVE')
    result = subprocess.run([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
        '--master_addr', '127.0.0.1', '--master_port',
        str(port),
        str(tmp_path / 'worker.py'),
        str(tmp_path)
    ],
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    ranks = [torch.load(tmp_path / f'rank{r}.pth') for r in (0, 1)]
    archs = ranks[0]['archs']
    assert ranks[1]['archs'] == archs and len(archs) == 4

    # The same step by hand: each rank's subnets on its own batch.
    before = dict(build_supernet_classifier().named_parameters())
    per_rank = [
        sandwich_gradients(build_supernet_classifier().train(),
                           as_data(*rank_batch(r)), archs) for r in (0, 1)
    ]
    assert per_rank[0].keys() == per_rank[1].keys()
    stem = 'backbone.stem.conv1.conv.weight'
    assert all(grads[stem].abs().sum() > 0 for grads in per_rank)
    for name, value in before.items():
        for rank in ranks:
            after = rank['params'][name]
            if name not in per_rank[0]:
                assert torch.equal(after, value.detach()), name
                continue
            mean = (per_rank[0][name] + per_rank[1][name]) / 2
            torch.testing.assert_close(value.detach() - after, mean, msg=name)
