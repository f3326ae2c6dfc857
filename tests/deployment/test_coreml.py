import coremltools as ct
import pytest

from mmeformer.deployment import build_export_model, export_coreml
from mmeformer.runtime import SetupError


def test_classifier_converts_with_its_inputs_and_outputs(load_cfg, tmp_path):
    model = build_export_model(
        load_cfg('classification/eformerv2_s0_in1k.py'), 'classifier')
    path = export_coreml(model, (64, 64), str(tmp_path / 'cls.mlpackage'))
    # Prediction needs macOS; the saved package and its interface do not.
    spec = ct.models.MLModel(path, skip_model_load=True).get_spec()
    (inputs, ), (outputs, ) = spec.description.input, spec.description.output
    assert inputs.name == 'input'
    assert list(inputs.type.multiArrayType.shape) == [1, 3, 64, 64]
    assert outputs.name == 'logits'
    assert spec.WhichOneof('Type') == 'mlProgram'
    # fp32 by default: coremltools' own default casts every op to float16
    # (528 FLOAT16 types in this program).
    assert 'FLOAT16' not in str(spec.mlProgram)


def test_other_precisions_are_refused_before_converting(tmp_path):
    with pytest.raises(SetupError, match='computes in fp32 or fp16, not bf16'):
        export_coreml(None, (64, 64), str(tmp_path / 'x.mlpackage'), 'bf16')
