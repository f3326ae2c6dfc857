"""Weights for numerical checks in which every path of a model matters."""
import torch
import torch.nn as nn

__all__ = ['randomize_weights']

#: Parameter names of layer scales (ours, and timm's ``gamma``).
LAYER_SCALES = ('ls1.weight', 'ls2.weight', 'ls1.gamma', 'ls2.gamma')
#: Parameter names of attention-bias tables (ours, and timm's).
BIAS_TABLES = ('attn_bias.table', 'attention_biases')


def randomize_weights(model: nn.Module, seed: int = 0) -> nn.Module:
    """Make every branch of a model visibly contribute to its output.

    A freshly built EfficientFormer adds about 1e-5 of each block to the
    residual stream (layer scales 1e-5, zero attention-bias tables,
    identity BatchNorm), so a wrong attention or bias stays within float
    rounding of the right output. Here BatchNorms get non-trivial affine
    parameters and running statistics, layer scales values of 0.1-0.5 and
    attention-bias tables standard normal values, as in a trained or
    converted checkpoint. The parameter names of timm's models are
    understood too. Other weights keep their values.

    Args:
        model (nn.Module): The model, changed in place.
        seed (int): Seed of the values. Defaults to 0.

    Returns:
        nn.Module: ``model``.
    """
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.rand(*shape, generator=generator)

    def randn(*shape):
        return torch.randn(*shape, generator=generator)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.weight.copy_(1 + 0.2 * randn(n))
                module.bias.copy_(0.1 * randn(n))
                module.running_mean.copy_(0.1 * randn(n))
                module.running_var.copy_(0.5 + rand(n))
        for name, param in model.named_parameters():
            if name.endswith(LAYER_SCALES):
                param.copy_(0.1 + 0.4 * rand(*param.shape))
            elif name.endswith(BIAS_TABLES):
                param.copy_(randn(*param.shape))
    return model
