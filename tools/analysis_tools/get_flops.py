"""Count the parameters and multiply-accumulates of a config's model."""
import argparse
from typing import Optional, Sequence

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS

import mmeformer  # noqa: F401  (registers the `mmeformer::` config prefix)
from mmeformer.runtime import (add_config_arguments, build_meta_model,
                               check_input_size, check_neck_inputs,
                               exit_on_setup_error, get_host, load_config,
                               parse_tool_args)
from mmeformer.utils import quiet_host_warnings

#: Default input (height, width) per host: the official papers' settings.
DEFAULT_SHAPES = {
    'mmpretrain': (224, 224),
    'mmdet': (800, 1280),
    'mmseg': (512, 512),
}

EPILOG = """\
The whole model is counted (backbone, neck and heads) on one image of the
given size, in inference mode: Mask R-CNN includes its RoI heads on the RPN's
proposals. mmengine counts one multiply-accumulate as one "flop", so the
numbers are MACs, the unit of the EfficientFormer papers. No weights are
loaded: the model is built as configured, without its init_cfg checkpoint.

default --shape: 224 (classification), 800 1280 (detection, as the
official mmdet get_flops), 512 (segmentation).

example:
  python tools/analysis_tools/get_flops.py \\
      configs/classification/eformerv2_s0_in1k.py --shape 224
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Parameters and MACs of the model a config builds.',
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, cfg_options_example='model.backbone.arch=l3')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        metavar='SIZE',
        help='input height and width, or one size for both')
    parser.add_argument(
        '--show-table',
        action='store_true',
        help='also print MACs and parameters per module')
    args = parse_tool_args(parser, argv)
    if args.shape is not None and len(args.shape) not in (1, 2):
        parser.error('--shape takes one size or a height and a width')
    return parser, args


def data_samples_for(host_scope: str, height: int,
                     width: int) -> Optional[list]:
    """The data samples a model's tensor-mode forward reads, if any.

    Only MMDetection's detectors read them (image shapes for the proposals).
    """
    if host_scope != 'mmdet':
        return None
    from mmdet.structures import DetDataSample
    shape = (height, width)
    return [
        DetDataSample(
            metainfo=dict(
                img_shape=shape,
                ori_shape=shape,
                pad_shape=shape,
                batch_input_shape=shape,
                scale_factor=(1., 1.)))
    ]


class TensorForward(torch.nn.Module):
    """A host model's inference forward on a batch of image tensors.

    Args:
        model (nn.Module): A model of MMPretrain, MMDetection or
            MMSegmentation.
        data_samples (list, optional): Passed to every forward.
    """

    def __init__(self, model: torch.nn.Module,
                 data_samples: Optional[list]) -> None:
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, inputs: torch.Tensor):
        return self.model(inputs, self.data_samples, mode='tensor')


def complexity(cfg: Config,
               shape: Optional[Sequence[int]] = None,
               show_table: bool = False) -> dict:
    """Parameters and MACs of ``cfg.model`` on one image.

    Args:
        cfg (Config): The config.
        shape (Sequence[int], optional): ``(size, )`` or ``(height,
            width)``; the host's default in :data:`DEFAULT_SHAPES` if None.
        show_table (bool): Also make the per-module table.

    Returns:
        dict: mmengine's result (``params``, ``flops``, ``out_table``...)
        and the input ``shape`` used.

    Raises:
        SetupError: If the config names no supported host, the model cannot
            be built or wired, or it cannot take inputs of ``shape`` (the
            counter traces the model, which skips the backbone's own check).
    """
    host = get_host(cfg)
    # The checks of tools/train.py and tools/test.py, on the meta device.
    meta_model = build_meta_model(cfg, host)
    check_neck_inputs(meta_model, cfg)
    height, width = check_input_size(meta_model, shape
                                     or DEFAULT_SHAPES[host.scope])
    del meta_model
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.eval()
    wrapped = TensorForward(model, data_samples_for(host.scope, height, width))
    with torch.no_grad():
        result = get_model_complexity_info(
            wrapped,
            inputs=(torch.rand(1, 3, height, width), ),
            show_table=show_table,
            show_arch=False)
    result['shape'] = (height, width)
    return result


def main(argv=None):
    quiet_host_warnings()
    parser, args = parse_args(argv)
    with exit_on_setup_error(parser):
        cfg = load_config(args.config, args.cfg_options)
        result = complexity(cfg, args.shape, args.show_table)
    height, width = result['shape']
    if args.show_table:
        print(result['out_table'])
    print(f'Input shape: 3x{height}x{width}\n'
          f'Params: {result["params"] / 1e6:.3f} M '
          f'({result["params"]:,})\n'
          f'MACs: {result["flops"] / 1e9:.3f} G ({result["flops"]:,})')


if __name__ == '__main__':
    main()
