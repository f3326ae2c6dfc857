"""Distributed sandwich training: the DDP wrapper that runs the sandwich
step of :class:`~mmeformer.search.SandwichImageClassifier`."""
from typing import Dict

import torch
from mmengine.dist import all_reduce_params, broadcast_object_list, get_rank
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper

from mmeformer.registry import MODEL_WRAPPERS
from mmeformer.utils import ConfigError
from .sandwich import SandwichImageClassifier

__all__ = ['SandwichDistributedDataParallel']


@MODEL_WRAPPERS.register_module()
class SandwichDistributedDataParallel(MMDistributedDataParallel):
    """Data-parallel sandwich training: every process runs the same subnets
    on its own batch, then the gradients are averaged once per step.

    :class:`~mmengine.model.MMDistributedDataParallel` trains by one
    forward of ``mode='loss'`` whose backward DDP synchronises; a sandwich
    step is several forward and backward passes, one per subnet, that
    share one optimizer step. Here rank 0 draws the step's subnets and
    broadcasts them, each process accumulates the gradients of all of them
    (:meth:`SandwichImageClassifier.sandwich_backward`), and the gradients
    are all-reduced to their mean before the optimizer steps: the update a
    single process would make on the union of the batches, with the same
    subnets. DDP's own forward is not used for training, so neither its
    reducer nor ``find_unused_parameters`` is involved: parameters that no
    subnet of the step used have no gradient, on every rank alike, and the
    optimizer skips them as it does in one process. Validation and testing
    are the wrapped model's.

    Set in a supernet config as::

        model_wrapper_cfg = dict(
            type='mmeformer.SandwichDistributedDataParallel',
            broadcast_buffers=False)

    Args:
        module (SandwichImageClassifier): The model.
        **kwargs: :class:`~mmengine.model.MMDistributedDataParallel`'s
            other arguments (``device_ids``, ``broadcast_buffers``...).
    """

    def __init__(self, module: SandwichImageClassifier, **kwargs) -> None:
        if not isinstance(module, SandwichImageClassifier):
            raise ConfigError(
                'model_wrapper_cfg: SandwichDistributedDataParallel runs the '
                'sandwich step of a SandwichImageClassifier, got a '
                f'{type(module).__name__}; set model.type='
                "'mmeformer.SandwichImageClassifier', or model_wrapper_cfg="
                "None for mmengine's default wrapper")
        super().__init__(module=module, **kwargs)

    def train_step(self, data: dict,
                   optim_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        """One sandwich step on every process, one averaged update.

        Args:
            data (dict): This process's batch.
            optim_wrapper (OptimWrapper): The optimizer wrapper.

        Returns:
            dict[str, Tensor]: This process's losses, see
            :meth:`SandwichImageClassifier.sandwich_backward`.
        """
        archs = [self.module.sandwich_archs() if get_rank() == 0 else None]
        broadcast_object_list(archs, src=0)
        # DDP's own gradient synchronisation stays off: one average below.
        with self.no_sync():
            log_vars = self.module.sandwich_backward(data, optim_wrapper,
                                                     archs[0])
        all_reduce_params(
            [p.grad for p in self.module.parameters() if p.grad is not None],
            op='mean')
        optim_wrapper.step()
        optim_wrapper.zero_grad()
        return log_vars
