"""INT8 post-training quantization of exported files with NNCF.

An fp32 file of ``tools/deployment/pytorch2onnx.py`` (classifier, backbone or
segmentor) is quantized by ``nncf.quantize`` with the transformer model type,
calibrated on images of the config's own data (the training split prepared
by the test pipeline, through the model's data preprocessor), or by
``nncf.quantize_with_accuracy_control``, which keeps the layers that cost
the most accuracy in float until the config's own test metric drops by at
most ``max_drop`` points. The result is an OpenVINO IR (or an ONNX QDQ file)
that :func:`~.scoring.score_file` scores and :mod:`.runtimes` runs at
``int8``.
"""
import copy
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.runner import Runner

from mmeformer.runtime import SetupError, check_test, get_host, load_config
from .files import atomic_output, check_output_path
from .runtimes import is_quantized, onnxruntime_session
from .scoring import (FILE_KINDS, FileNetwork, attach_file, check_file_fits,
                      check_file_input, file_kind, load_host_model, open_file,
                      read_signature, test_inputs)

__all__ = [
    'QUANTIZED_FORMATS', 'ACCURACY_METRICS', 'calibration_loader',
    'ModelInputs', 'build_ignored_scope', 'nncf_options', 'read_network',
    'quantize_network', 'save_quantized', 'quantize_file'
]

#: Formats a quantized model is written in, and their file extensions.
QUANTIZED_FORMATS = {'openvino': '.xml', 'onnx': '.onnx'}

#: The metric the accuracy control keeps, per host, and its factor to
#: points (mAP is in 0-1, top-1 and mIoU in %).
ACCURACY_METRICS = {
    'mmpretrain': ('accuracy/top1', 1.),
    'mmdet': ('coco/bbox_mAP', 100.),
    'mmseg': ('mIoU', 1.),
}


def _batch_one(loader_cfg: dict, shuffle: bool) -> dict:
    loader = copy.deepcopy(loader_cfg)
    loader.update(batch_size=1, num_workers=0, persistent_workers=False)
    loader['sampler'] = dict(type='DefaultSampler', shuffle=shuffle)
    return loader


def calibration_loader(cfg: Config, split: str = 'train', seed: int = 0):
    """One image per batch from ``split``, prepared by the test pipeline.

    The training images are read as the test images are (no augmentation),
    in a shuffled order fixed by ``seed``; NNCF takes the first ones.

    Args:
        cfg (Config): The config (its host's modules registered).
        split (str): 'train', 'val' or 'test'. Defaults to 'train'.
        seed (int): Seed of the order. Defaults to 0.

    Returns:
        DataLoader: The loader.

    Raises:
        SetupError: If the split has no dataloader, its dataset is wrapped
            (no pipeline of its own to replace) or holds no image.
    """
    loader = cfg.get(f'{split}_dataloader')
    if not loader:
        raise SetupError(f'the config has no {split}_dataloader to '
                         'calibrate with; choose another --calib-split')
    loader = _batch_one(loader, shuffle=split == 'train')
    if split != 'test':
        if 'pipeline' not in loader['dataset']:
            raise SetupError(
                f'the {split} dataset of the config is a wrapper '
                f"({loader['dataset'].get('type')}) without a pipeline of "
                'its own; calibrate with --calib-split test')
        test = cfg.test_dataloader
        loader['dataset']['pipeline'] = copy.deepcopy(test.dataset.pipeline)
        if 'collate_fn' in test:
            loader['collate_fn'] = copy.deepcopy(test.collate_fn)
    if 'pipeline' in loader['dataset']:
        # mmengine cannot serialize an empty data list; one image at a time
        # in this process needs no serialized copy.
        loader['dataset']['serialize_data'] = False
    loader = Runner.build_dataloader(loader, seed=seed)
    if len(loader.dataset) == 0:
        raise SetupError(f'the calibration set (the {split} split) is empty: '
                         'point the config at images (--cfg-options '
                         f'{split}_dataloader.dataset.data_root=...)')
    return loader


class ModelInputs:
    """NNCF's transform: a data batch to the file's input, through the
    model's data preprocessor.

    Args:
        data_preprocessor (nn.Module): The model's data preprocessor.
        shape (Sequence[int | None]): The file's input shape (None: any).
        input_name (str): The file's input. Defaults to 'input'.
        what (str): The data set, for messages. Defaults to 'calibration'.

    Raises:
        SetupError: When called with a batch of another size than the file
            takes.
    """

    def __init__(self,
                 data_preprocessor: nn.Module,
                 shape: Sequence[Optional[int]],
                 input_name: str = 'input',
                 what: str = 'calibration') -> None:
        self.data_preprocessor = data_preprocessor
        self.shape = tuple(shape)
        self.input_name = input_name
        self.what = what

    def __call__(self, batch: dict) -> Dict[str, np.ndarray]:
        with torch.no_grad():
            inputs = self.data_preprocessor(batch, False)['inputs']
        if any(d is not None and d != s
               for d, s in zip(self.shape, inputs.shape)):
            want = 'x'.join('?' if d is None else str(d) for d in self.shape)
            got = 'x'.join(map(str, inputs.shape))
            raise SetupError(
                f'a {self.what} image gives an input of {got}, the file '
                f'takes {want}: make the pipeline give that size, or quantize '
                'a file exported with --dynamic-export')
        return {self.input_name: inputs.numpy()}


def build_ignored_scope(names: Sequence[str] = (),
                        patterns: Sequence[str] = (),
                        types: Sequence[str] = ()):
    """The layers NNCF leaves in float, or None for none.

    Args:
        names (Sequence[str]): Node names.
        patterns (Sequence[str]): Regular expressions of node names.
        types (Sequence[str]): Operation types of the file's format, e.g.
            ``Softmax``, ``Gelu`` (OpenVINO) or ``MatMul``.

    Returns:
        nncf.IgnoredScope | None: The scope.
    """
    import nncf
    if not (names or patterns or types):
        return None
    return nncf.IgnoredScope(
        names=list(names),
        patterns=list(patterns),
        types=list(types),
        validate=False)


def nncf_options(subset_size: int,
                 ignored_scope=None,
                 preset: Optional[str] = None) -> dict:
    """The options every quantization here gives NNCF: the transformer
    model type (NNCF's scheme for attention models: the q.k and softmax.v
    products quantized, softmax and the bias add kept in float), the number
    of calibration samples, the layers kept in float and the preset.

    Args:
        subset_size (int): Calibration samples NNCF reads.
        ignored_scope (nncf.IgnoredScope, optional): Layers kept in float;
            see :func:`build_ignored_scope`.
        preset (str, optional): ``'performance'`` (symmetric activations) or
            ``'mixed'``; None for NNCF's choice for transformers, mixed.

    Returns:
        dict: Keyword arguments of ``nncf.quantize`` and
        ``nncf.quantize_with_accuracy_control``.
    """
    import nncf
    options = dict(
        subset_size=subset_size,
        model_type=nncf.ModelType.TRANSFORMER,
        ignored_scope=ignored_scope)
    if preset is not None:
        options['preset'] = nncf.QuantizationPreset(preset)
    return options


def read_network(path: str, quantized_format: str):
    """Read an fp32 file as the network NNCF quantizes into
    ``quantized_format``: an ``ov.Model`` for ``'openvino'`` (an IR), an
    ``onnx.ModelProto`` for ``'onnx'`` (a QDQ file)."""
    if quantized_format == 'openvino':
        import openvino as ov
        return ov.Core().read_model(path)
    import onnx
    return onnx.load(path)


def quantize_network(network,
                     samples: Sequence[np.ndarray],
                     input_name: str = 'input',
                     ignored_scope=None,
                     preset: Optional[str] = None):
    """Quantize an fp32 network in memory on given calibration inputs.

    :func:`quantize_file` calibrates on a config's images; this is for a
    network without a data set, e.g. a benchmark's randomly initialised
    model, whose speed (not its accuracy) is what the INT8 file is for.

    Args:
        network (ov.Model | onnx.ModelProto): The fp32 network of an
            exported file (an OpenVINO model gives an OpenVINO model, an ONNX
            model an ONNX QDQ model).
        samples (Sequence[np.ndarray]): Calibration inputs, each of the
            network's input shape; all of them are used.
        input_name (str): The network's input. Defaults to 'input'.
        ignored_scope (nncf.IgnoredScope, optional): Layers kept in float.
        preset (str, optional): See :func:`nncf_options`.

    Returns:
        ov.Model | onnx.ModelProto: The quantized network; write it with
        :func:`save_quantized`.

    Raises:
        SetupError: If ``samples`` is empty.
    """
    import nncf
    if not samples:
        raise SetupError('quantization needs at least one calibration input')
    calibration = nncf.Dataset(list(samples), lambda x: {input_name: x})
    return nncf.quantize(network, calibration,
                         **nncf_options(len(samples), ignored_scope, preset))


def save_quantized(model, path: str) -> str:
    """Write a quantized model atomically: an OpenVINO ``ov.Model`` to an
    ``.xml`` IR (its ``.bin`` replaced first), an ONNX model to ``.onnx``.

    Args:
        model (ov.Model | onnx.ModelProto): The model.
        path (str): The output file; its folder must exist.

    Returns:
        str: The absolute path written.
    """
    path = check_output_path(path)
    if path.endswith('.xml'):
        import openvino as ov
        with atomic_output(path) as tmp_xml, \
                atomic_output(path[:-4] + '.bin') as tmp_bin:
            assert tmp_bin == tmp_xml[:-4] + '.bin'
            ov.save_model(model, tmp_xml, compress_to_fp16=False)
        return path
    import onnx
    with atomic_output(path) as tmp:
        onnx.save(model, tmp)
    return path


class _InMemorySession:
    """A model NNCF hands to the validation function, called as a
    :class:`~.runtimes.RuntimeSession` is: an OpenVINO ``CompiledModel``
    (NNCF compiles it in f32) or an ONNX ``ModelProto`` (run in ONNX
    Runtime)."""

    def __init__(self, model) -> None:
        if hasattr(model, 'SerializeToString'):
            session = onnxruntime_session(model.SerializeToString())
            self.output_names = [o.name for o in session.get_outputs()]
            name = session.get_inputs()[0].name
            self._run = lambda x: session.run(None, {name: x})
        else:
            request = model.create_infer_request()
            self.output_names = [p.get_any_name() for p in model.outputs]
            self._run = lambda x: [
                request.infer({0: x})[p] for p in model.outputs
            ]

    def __call__(self, inputs: np.ndarray) -> List[np.ndarray]:
        return [np.array(out) for out in self._run(inputs)]


class _Validation:
    """NNCF's validation function: the config's test metric (in points) of
    a candidate model on the given batches, and each batch's outputs."""

    def __init__(self, model: nn.Module, kind: str, evaluator: Evaluator,
                 metric: str, scale: float) -> None:
        self.model = model
        self.kind = kind
        self.evaluator = evaluator
        self.metric = metric
        self.scale = scale

    def __call__(self, candidate, batches):
        network = FileNetwork(_InMemorySession(candidate), batch_size=1)
        model = attach_file(self.model, self.kind, network)
        outputs, count = [], 0
        with torch.no_grad():
            for batch in batches:
                predictions = model.test_step(batch)
                self.evaluator.process(predictions, batch)
                count += len(predictions)
                inputs = model.data_preprocessor(batch, False)['inputs']
                outputs.append(network.run(inputs))
        metrics = self.evaluator.evaluate(count)
        if self.metric not in metrics:
            raise SetupError(f'the evaluator gives {", ".join(metrics)}, '
                             f'not {self.metric}: choose one (--metric)')
        return float(metrics[self.metric]) * self.scale, outputs


def quantize_file(config: str,
                  path: str,
                  output_file: str,
                  checkpoint: Optional[str] = None,
                  cfg_options: Optional[dict] = None,
                  calib_split: str = 'train',
                  num_samples: int = 300,
                  ignored_names: Sequence[str] = (),
                  ignored_patterns: Sequence[str] = (),
                  ignored_types: Sequence[str] = (),
                  max_drop: Optional[float] = None,
                  metric: Optional[str] = None,
                  preset: Optional[str] = None,
                  seed: int = 0) -> dict:
    """Quantize an exported fp32 file to INT8 with NNCF.

    Args:
        config (str): The config the file was exported from.
        path (str): The fp32 file (``.onnx``, or an OpenVINO ``.xml``).
        output_file (str): An ``.xml`` (OpenVINO IR) or ``.onnx`` (QDQ)
            path; its folder must exist.
        checkpoint (str, optional): Weights of the whole model; needed by
            the accuracy control of a backbone file (its heads run in
            PyTorch). Defaults to None.
        cfg_options (dict, optional): Config overrides.
        calib_split (str): Split of the calibration images.
            Defaults to 'train'.
        num_samples (int): Calibration images. Defaults to 300.
        ignored_names (Sequence[str]): Nodes kept in float.
        ignored_patterns (Sequence[str]): Regular expressions of nodes kept
            in float.
        ignored_types (Sequence[str]): Operation types kept in float.
        max_drop (float, optional): With it, quantize with accuracy control:
            at most this many points lost on the test split (mAP x 100,
            mIoU and top-1 in %). Defaults to None.
        metric (str, optional): The metric the accuracy control keeps;
            defaults to the host's in :data:`ACCURACY_METRICS`.
        preset (str, optional): NNCF's 'performance' or 'mixed'; NNCF's
            default for transformers (mixed) if None.
        seed (int): Order of the calibration images. Defaults to 0.

    Returns:
        dict: ``output`` (the path written), ``kind``, ``num_samples``
        (calibration images used) and, with the accuracy control, the
        ``metric`` kept (NNCF logs its fp32 and int8 values).

    Raises:
        SetupError: Before anything is written, if a file, the data or the
            checkpoint is missing, the file is quantized already, of
            another model or input size than the config, or the calibration
            set is empty or of another size.
    """
    import nncf
    cfg = load_config(config, cfg_options)
    host = get_host(cfg)
    ext = osp.splitext(output_file)[1]
    formats = {e: f for f, e in QUANTIZED_FORMATS.items()}
    if ext not in formats:
        raise SetupError(f'{output_file}: write an OpenVINO IR (.xml) or an '
                         'ONNX QDQ file (.onnx)')
    output_file = check_output_path(output_file)
    if osp.abspath(path) == output_file:
        raise SetupError(f'{output_file} is the input file: name another')
    if num_samples < 1:
        raise SetupError(f'--num-samples {num_samples}: calibrate with at '
                         'least one image (NNCF suggests 300)')
    check_test(cfg, checkpoint)
    inputs, outputs = read_signature(path)
    kind = file_kind(outputs, path)
    if kind == 'detector':
        raise SetupError(
            f'{path} is an MMDeploy end-to-end detector (custom ops); '
            'quantize its backbone file (pytorch2onnx.py --kind backbone)')
    if host.scope not in FILE_KINDS[kind]:
        raise SetupError(f'{path} is a {kind} file; {config} is a '
                         f'{host.task} config ({host.scope})')
    runtime = 'openvino' if path.endswith('.xml') else 'onnxruntime'
    if is_quantized(path, runtime):
        raise SetupError(f'{path} is quantized already; quantize the fp32 '
                         'file it came from')
    if max_drop is not None and kind == 'backbone' and checkpoint is None:
        raise SetupError('the accuracy control scores the model with the '
                         'heads in PyTorch: give the checkpoint of the whole '
                         'model (--checkpoint)')
    host.register_modules()
    model = load_host_model(cfg, checkpoint)
    sample = test_inputs(cfg, model.data_preprocessor)
    check_file_input(path, inputs, sample, config)
    check_file_fits(
        model,
        kind,
        path,
        open_file(path, runtime, 'fp32'),
        sample,
        config,
        compare=False)

    (input_name, shape), = inputs.items()
    loader = calibration_loader(cfg, calib_split, seed)
    used = min(num_samples, len(loader))
    transform = ModelInputs(model.data_preprocessor, shape, input_name)
    calibration = nncf.Dataset(loader, transform)
    network = read_network(path, formats[ext])
    options = nncf_options(
        used,
        build_ignored_scope(ignored_names, ignored_patterns, ignored_types),
        preset)
    result = dict(kind=kind, num_samples=used)
    if max_drop is None:
        quantized = nncf.quantize(network, calibration, **options)
    else:
        metric, scale = (metric,
                         1.) if metric else ACCURACY_METRICS[host.scope]
        test_loader = Runner.build_dataloader(
            _batch_one(cfg.test_dataloader, shuffle=False))
        evaluator = Evaluator(copy.deepcopy(cfg.test_evaluator))
        evaluator.dataset_meta = test_loader.dataset.metainfo
        validate = _Validation(model, kind, evaluator, metric, scale)
        validation = nncf.Dataset(
            test_loader,
            ModelInputs(model.data_preprocessor, shape, input_name, 'test'))
        quantized = nncf.quantize_with_accuracy_control(
            network,
            calibration,
            validation,
            validate,
            max_drop=max_drop,
            drop_type=nncf.DropType.ABSOLUTE,
            **options)
        result['metric'] = metric
    result['output'] = save_quantized(quantized, output_file)
    return result
