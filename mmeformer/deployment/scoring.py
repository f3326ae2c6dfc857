"""Score an exported model on its config's test data: what MMDeploy's
``tools/test.py`` does, for the files of ``tools/deployment/pytorch2onnx.py``.

The config's own Runner is built as ``tools/test.py`` builds it (test
dataset, pipeline, data preprocessor, evaluator and hooks); only the network,
or the part of it that was exported, is swapped for :class:`FileNetwork`,
which runs the file in ONNX Runtime or OpenVINO at a named precision
(:func:`~.runtimes.open_session`):

- a classifier file (``logits``) replaces backbone, neck and head up to the
  logits; MMPretrain's head turns them into predictions;
- a segmentor file (``seg_logits``) replaces whole-image inference;
  MMSegmentation's ``postprocess_result`` resizes and takes the argmax;
- a backbone file (``feat0``..) replaces the backbone of any config: neck,
  heads and post-processing run in PyTorch with the checkpoint's weights;
- an MMDeploy end-to-end detector file (``dets``, ``labels``, ``masks``)
  runs in MMDeploy's own backend model and test runner.
"""
import copy
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.runner import Runner

from mmeformer.runtime import (SetupError, apply_test_options, build_runner,
                               check_test, get_host, load_config)
from .onnx_export import compare_outputs
from .runtimes import check_precision, is_quantized, open_session
from .wrappers import EXPORT_KINDS, load_model

__all__ = [
    'FILE_KINDS', 'read_signature', 'file_kind', 'check_file_input',
    'check_file_fits', 'FileNetwork', 'FileClassifier', 'FileSegmentor',
    'attach_file', 'load_host_model', 'test_inputs', 'open_file', 'score_file'
]

#: Kinds of exported files and the hosts whose configs they come from.
FILE_KINDS = {
    'classifier': ('mmpretrain', ),
    'segmentor': ('mmseg', ),
    'backbone': ('mmpretrain', 'mmdet', 'mmseg'),
    'detector': ('mmdet', ),
}

#: A dimension: its size, or None where the file takes any size.
Signature = Dict[str, Tuple[Optional[int], ...]]


def _check_exists(path: str) -> None:
    if not osp.isfile(path):
        raise SetupError(f'exported file {path} does not exist; write it '
                         'with tools/deployment/pytorch2onnx.py (or '
                         'tools/deployment/quantize.py)')
    if path.endswith('.xml') and not osp.isfile(path[:-4] + '.bin'):
        raise SetupError(f'{path} has no weights beside it: '
                         f'{path[:-4]}.bin does not exist')


def read_signature(path: str) -> Tuple[Signature, Signature]:
    """The inputs and outputs an exported file declares, read without
    compiling it.

    Args:
        path (str): An ``.onnx`` file or an OpenVINO ``.xml`` IR.

    Returns:
        tuple[dict, dict]: ``{name: shape}`` of the inputs and of the
        outputs, in order; a dynamic dimension is None.

    Raises:
        SetupError: If the file is missing or of another format.
    """
    _check_exists(path)
    if path.endswith('.onnx'):
        import onnx
        graph = onnx.load(path, load_external_data=False).graph
        weights = {init.name for init in graph.initializer}

        def shape(value):
            return tuple(
                d.dim_value if d.HasField('dim_value') else None
                for d in value.type.tensor_type.shape.dim)

        return ({
            v.name: shape(v)
            for v in graph.input if v.name not in weights
        }, {
            v.name: shape(v)
            for v in graph.output
        })
    if path.endswith('.xml'):
        import openvino as ov
        model = ov.Core().read_model(path)

        def ports(items):
            return {
                port.get_any_name():
                tuple(d.get_length() if d.is_static else None
                      for d in port.get_partial_shape())
                for port in items
            }

        return ports(model.inputs), ports(model.outputs)
    raise SetupError(f'{path}: exported models are .onnx files or OpenVINO '
                     '.xml IRs')


def file_kind(output_names: Sequence[str], path: str = 'the file') -> str:
    """What an exported file holds, from its output names.

    Args:
        output_names (Sequence[str]): The file's outputs.
        path (str): The file, for messages.

    Returns:
        str: One of :data:`FILE_KINDS`.

    Raises:
        SetupError: If the outputs are none of those the export writes.
    """
    names = tuple(output_names)
    if names == ('logits', ):
        return 'classifier'
    if names == ('seg_logits', ):
        return 'segmentor'
    if names and names == tuple(f'feat{i}' for i in range(len(names))):
        return 'backbone'
    if names[:2] == ('dets', 'labels'):
        return 'detector'
    raise SetupError(
        f'{path} has outputs {", ".join(names)}: not a file of '
        'tools/deployment/pytorch2onnx.py (logits, seg_logits, feat0.., or '
        "MMDeploy's dets, labels, masks)")


def _shape_text(shape: Sequence[Optional[int]]) -> str:
    return 'x'.join('?' if d is None else str(d) for d in shape)


def check_file_input(path: str, inputs: Signature, sample: torch.Tensor,
                     config: str) -> None:
    """Refuse a file that does not take the config's test inputs.

    Args:
        path (str): The file, for messages.
        inputs (dict): Its inputs, from :func:`read_signature`.
        sample (torch.Tensor): One preprocessed test image.
        config (str): The config, for messages.

    Raises:
        SetupError: If the file takes other inputs or another size.
    """
    if len(inputs) != 1:
        raise SetupError(f'{path} takes the inputs {", ".join(inputs)}; the '
                         'exported models take one image batch, "input"')
    (name, shape), = inputs.items()
    want = tuple(sample.shape)
    if len(shape) != 4 or any(d is not None and d != w
                              for d, w in zip(shape[1:], want[1:])):
        raise SetupError(
            f'{path} takes {name} of {_shape_text(shape)}, but the test '
            f'pipeline of {config} gives {_shape_text(want)} (one image): '
            f'export the file at --shape {want[2]} {want[3]} or with '
            '--dynamic-export')


def check_file_fits(model: nn.Module,
                    kind: str,
                    path: str,
                    network: 'FileNetwork',
                    sample: torch.Tensor,
                    config: str,
                    compare: bool = True) -> Optional[float]:
    """Refuse a file of another model than ``model``; measure how far it is.

    The file's output names and, on one real test input, the shapes of its
    outputs must be those of the same kind exported from ``model`` (another
    variant, number of classes or ``out_indices`` changes them).

    Args:
        model (nn.Module): The config's model, with its weights.
        kind (str): The file's kind (not 'detector').
        path (str): The file, for messages.
        network (FileNetwork): The file, opened.
        sample (torch.Tensor): One preprocessed test image, ``(1, 3, H, W)``.
        config (str): The config, for messages.
        compare (bool): Also return the deviation from PyTorch. Defaults to
            True.

    Returns:
        float | None: ``max |file - PyTorch| / max |PyTorch|`` over the
        outputs on ``sample`` (None if ``compare`` is False).

    Raises:
        SetupError: If the names or shapes differ.
    """
    wrapper = EXPORT_KINDS[kind][0](model.backbone if kind ==
                                    'backbone' else model).eval()
    names = tuple(wrapper.output_names)
    if tuple(network.output_names) != names:
        raise SetupError(
            f'{path} has outputs {", ".join(network.output_names)}, the '
            f'{kind} of {config} has {", ".join(names)}: a file of another '
            'model (out_indices?)')
    with torch.no_grad():
        expected = wrapper(sample)
        if isinstance(expected, torch.Tensor):
            expected = (expected, )
        actual = network.run(sample)
    for name, ref, out in zip(names, expected, actual):
        if tuple(ref.shape) != tuple(out.shape):
            raise SetupError(
                f'{path} is not a {kind} of {config}: on a test image its '
                f'output {name} is {_shape_text(out.shape)}, the model\'s is '
                f'{_shape_text(ref.shape)} (another variant or number of '
                'classes); score it with the config it was exported from')
    if not compare:
        return None
    return max(compare_outputs(expected, actual))


class FileNetwork(nn.Module):
    """An exported file as a PyTorch module: an image batch in, the file's
    outputs out, as CPU float tensors.

    A file exported for batch 1 runs a larger batch one image at a time.

    Args:
        session (Callable): Runs the file: called with one array, returns a
            list of arrays; has ``output_names``, e.g. a
            :class:`~.runtimes.RuntimeSession`.
        batch_size (int, optional): The file's fixed batch size; None if it
            takes any. Defaults to None.
    """

    def __init__(self, session, batch_size: Optional[int] = None) -> None:
        super().__init__()
        self.session = session
        self.batch_size = batch_size
        self.output_names = tuple(session.output_names)

    def run(self, inputs: torch.Tensor) -> List[np.ndarray]:
        """Run the file; returns its outputs as arrays."""
        inputs = inputs.detach().float().cpu().numpy()
        if self.batch_size is None or len(inputs) == self.batch_size:
            return list(self.session(inputs))
        if self.batch_size != 1:
            raise SetupError(f'the file takes batches of {self.batch_size}, '
                             f'got {len(inputs)} images: set the test '
                             f'dataloader\'s batch_size to {self.batch_size}')
        parts = [self.session(x[None]) for x in inputs]
        return [np.concatenate(outs) for outs in zip(*parts)]

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(
            torch.from_numpy(np.array(out, dtype=np.float32))
            for out in self.run(inputs))


class FileClassifier(BaseModel):
    """An MMPretrain classifier whose logits come from an exported file.

    Args:
        classifier (nn.Module): The config's ``ImageClassifier``: its data
            preprocessor and its head's post-processing are used.
        network (FileNetwork): A classifier file.
    """

    def __init__(self, classifier: nn.Module, network: FileNetwork) -> None:
        super().__init__(data_preprocessor=classifier.data_preprocessor)
        self.head = classifier.head
        self.network = network

    def forward(self, inputs: torch.Tensor, data_samples=None, mode='predict'):
        logits, = self.network(inputs)
        if mode == 'tensor':
            return logits
        if mode != 'predict':
            raise ValueError(f'an exported file only predicts, not {mode}')
        return self.head._get_predictions(logits, data_samples)


class FileSegmentor(BaseModel):
    """An MMSegmentation segmentor whose whole-image logits come from an
    exported file.

    Args:
        segmentor (nn.Module): The config's ``EncoderDecoder``: its data
            preprocessor and ``postprocess_result`` are used.
        network (FileNetwork): A segmentor file.

    Raises:
        SetupError: If the config tests in slide mode.
    """

    def __init__(self, segmentor: nn.Module, network: FileNetwork) -> None:
        super().__init__(data_preprocessor=segmentor.data_preprocessor)
        mode = segmentor.test_cfg.get('mode', 'whole')
        if mode != 'whole':
            raise SetupError(
                f'the config tests in {mode!r} mode; a segmentor file is '
                'whole-image inference: set model.test_cfg.mode=whole, or '
                'score the backbone file (--kind backbone)')
        self.segmentor = segmentor
        self.network = network

    def forward(self, inputs: torch.Tensor, data_samples=None, mode='predict'):
        seg_logits, = self.network(inputs)
        if mode == 'tensor':
            return seg_logits
        if mode != 'predict':
            raise ValueError(f'an exported file only predicts, not {mode}')
        return self.segmentor.postprocess_result(seg_logits, data_samples)


def attach_file(model: nn.Module, kind: str,
                network: FileNetwork) -> BaseModel:
    """The model that the test loop runs, with the exported part swapped
    for ``network``.

    Args:
        model (nn.Module): The config's model; a backbone file replaces its
            backbone in place.
        kind (str): 'classifier', 'segmentor' or 'backbone'.
        network (FileNetwork): The file.

    Returns:
        BaseModel: A model with ``test_step``.
    """
    if kind == 'classifier':
        return FileClassifier(model, network)
    if kind == 'segmentor':
        return FileSegmentor(model, network)
    model.backbone = network
    return model


def load_host_model(cfg: Config, checkpoint: Optional[str] = None):
    """The config's model as its Runner builds it, with its weights.

    As mmengine's Runner does, a top-level ``data_preprocessor`` (where
    MMPretrain configs keep the normalisation) is the model's unless the
    model names its own.

    Args:
        cfg (Config): The config.
        checkpoint (str, optional): See
            :func:`~.wrappers.load_model`. Defaults to None.

    Returns:
        nn.Module: The model in eval mode.
    """
    if cfg.get('data_preprocessor') and 'data_preprocessor' not in cfg.model:
        cfg = copy.deepcopy(cfg)
        cfg.model.data_preprocessor = cfg.data_preprocessor
    return load_model(cfg, checkpoint)


def test_inputs(cfg: Config,
                data_preprocessor: nn.Module,
                num_images: int = 1) -> torch.Tensor:
    """The first preprocessed images of the config's test split.

    Args:
        cfg (Config): The config (its host's modules registered).
        data_preprocessor (nn.Module): The model's data preprocessor.
        num_images (int): How many. Defaults to 1.

    Returns:
        torch.Tensor: ``(num_images, 3, H, W)``, what the network sees.
    """
    loader = copy.deepcopy(cfg.test_dataloader)
    loader.update(
        batch_size=num_images, num_workers=0, persistent_workers=False)
    loader['sampler'] = dict(type='DefaultSampler', shuffle=False)
    batch = next(iter(Runner.build_dataloader(loader)))
    with torch.no_grad():
        return data_preprocessor(batch, False)['inputs']


def open_file(path: str,
              runtime: str,
              precision: Optional[str] = None,
              threads: Optional[int] = None) -> FileNetwork:
    """Open an exported file for :class:`FileNetwork`.

    Args:
        path (str): The file.
        runtime (str): 'onnxruntime' or 'openvino'.
        precision (str, optional): See :func:`~.runtimes.open_session`;
            None takes 'int8' for a quantized file and 'fp32' otherwise.
        threads (int, optional): CPU threads. Defaults to None.

    Returns:
        FileNetwork: The file, with ``precision`` set.

    Raises:
        SetupError: If the file is missing or the runtime cannot run it at
            that precision here (naming the precisions it can run).
    """
    _check_exists(path)
    if path.endswith('.xml') and runtime != 'openvino':
        raise SetupError(f'{path} is an OpenVINO IR: run it with '
                         '--runtime openvino')
    try:
        if precision is None:
            precision = 'int8' if is_quantized(path, runtime) else 'fp32'
        check_precision(runtime, precision)
        session = open_session(path, runtime, precision, threads)
    except ValueError as e:
        raise SetupError(str(e)) from e
    inputs, _ = read_signature(path)
    batch = next(iter(inputs.values()))[0] if len(inputs) == 1 else None
    network = FileNetwork(session, batch)
    network.precision = precision
    return network


def _score_mmdeploy(cfg: Config, path: str, runtime: str,
                    precision: Optional[str], inputs: Signature,
                    deploy_cfg: Optional[str]) -> dict:
    """Score an MMDeploy end-to-end file with MMDeploy's backend model and
    test runner."""
    if runtime != 'onnxruntime' or precision not in (None, 'fp32'):
        raise SetupError(
            f'{path} is an MMDeploy end-to-end detector: it runs in ONNX '
            'Runtime at fp32 with MMDeploy\'s custom ops (RoIAlign, NMS). '
            'For OpenVINO or int8 score its backbone file (pytorch2onnx.py '
            '--kind backbone)')
    if deploy_cfg is None:
        raise SetupError(f'{path} is an MMDeploy file: name its deploy '
                         'config (--deploy-cfg)')
    if not osp.isfile(deploy_cfg):
        raise SetupError(f'deploy config {deploy_cfg} does not exist')
    from mmdeploy.apis.utils import build_task_processor
    deploy = Config.fromfile(deploy_cfg)
    shape = next(iter(inputs.values()))
    if None not in shape[2:]:
        deploy.onnx_config.input_shape = [shape[3], shape[2]]
    processor = build_task_processor(cfg, deploy, 'cpu')
    model = processor.build_backend_model([path])
    check_file_input(path, inputs, test_inputs(cfg, model.data_preprocessor),
                     cfg.filename)
    # MMDeploy's own tools/test.py runs one image per batch.
    loader = copy.deepcopy(cfg.test_dataloader)
    loader.batch_size = 1
    runner = processor.build_test_runner(
        model, cfg.work_dir, dataloader=loader)
    return runner.test()


def score_file(config: str,
               path: str,
               runtime: str = 'onnxruntime',
               precision: Optional[str] = None,
               checkpoint: Optional[str] = None,
               work_dir: Optional[str] = None,
               cfg_options: Optional[dict] = None,
               threads: Optional[int] = None,
               out: Optional[str] = None,
               show_dir: Optional[str] = None,
               deploy_cfg: Optional[str] = None) -> dict:
    """Evaluate an exported file on the test split of ``config``.

    Args:
        config (str): The config the file was exported from.
        path (str): The file (``.onnx`` or OpenVINO ``.xml``).
        runtime (str): 'onnxruntime' or 'openvino'.
            Defaults to 'onnxruntime'.
        precision (str, optional): See :func:`open_file`.
        checkpoint (str, optional): Weights of the whole model: needed for a
            backbone file (the heads run in PyTorch); for the other kinds it
            gives the deviation from PyTorch on the first test image.
        work_dir (str, optional): Logs and the metrics json.
        cfg_options (dict, optional): Config overrides.
        threads (int, optional): CPU threads of the runtime.
        out (str, optional): A ``.pkl`` for the raw predictions.
        show_dir (str, optional): Where drawn predictions go.
        deploy_cfg (str, optional): MMDeploy deploy config of an end-to-end
            detector file.

    Returns:
        dict: The host's metrics, plus ``deviation`` (see
        :func:`check_file_fits`) when measured.

    Raises:
        SetupError: Before the test runs, if the file, the data or the
            checkpoint is missing, the file is of another model, kind or
            input size than the config, or the runtime cannot run the
            precision.
    """
    cfg = load_config(config, cfg_options, work_dir)
    host = get_host(cfg)
    apply_test_options(cfg, host, checkpoint, out, show_dir)
    # The checkpoint is loaded below, into the part that stays in PyTorch.
    cfg.load_from = None
    check_test(cfg, checkpoint)
    inputs, outputs = read_signature(path)
    kind = file_kind(outputs, path)
    if host.scope not in FILE_KINDS[kind]:
        raise SetupError(f'{path} is a {kind} file; {config} is a '
                         f'{host.task} config ({host.scope})')
    host.register_modules()
    if kind == 'detector':
        return _score_mmdeploy(cfg, path, runtime, precision, inputs,
                               deploy_cfg)
    if kind == 'backbone' and checkpoint is None:
        raise SetupError('the neck and heads of a backbone file run in '
                         'PyTorch: give the checkpoint of the whole model '
                         '(--checkpoint)')
    network = open_file(path, runtime, precision, threads)
    model = load_host_model(cfg, checkpoint)
    sample = test_inputs(cfg, model.data_preprocessor)
    check_file_input(path, inputs, sample, config)
    deviation = check_file_fits(
        model,
        kind,
        path,
        network,
        sample,
        config,
        compare=checkpoint is not None)
    runner = build_runner(cfg, host)
    runner.model = attach_file(model, kind, network)
    if deviation is not None:
        runner.logger.info(
            f'{osp.basename(path)} ({kind}, {runtime}, {network.precision})'
            f' differs from PyTorch by {deviation:.2e} of the output '
            'magnitude on the first test image')
    metrics = dict(runner.test())
    if deviation is not None:
        metrics['deviation'] = deviation
    return metrics
