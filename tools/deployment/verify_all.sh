#!/usr/bin/env bash
# Export every EfficientFormer variant to ONNX and run each file in ONNX
# Runtime and OpenVINO at PRECISION, compared with fp32 PyTorch
# (tools/deployment/pytorch2onnx.py --verify), one export at a time:
#   * the classifier, static at 224x224;
#   * the dense backbone of the Mask R-CNN config (attention biases for
#     800-pixel inputs; V1 with its output GroupNorms), dynamic, verified at
#     224x224, 512x512, 513x671 and 800x1216;
#   * the same backbone, static at 800x1216.
# Weights come from CHECKPOINT_DIR/<config name>.pth where it exists, else
# they are random with every path active (mmeformer.testing.randomize_weights:
# random attention-bias tables, layer scales of 0.1-0.5, BatchNorm statistics),
# saved as WORK_DIR/<config name>_random.pth. Freshly built weights would not
# do: their attention adds about 1e-5 of each output, under the bound.
# PRECISION (default fp32) is the precision each runtime is verified at.
#
# usage: tools/deployment/verify_all.sh [WORK_DIR] [VARIANT...]
#   WORK_DIR  where the .onnx files and verify_all.log go
#             (default: work_dirs/verify_all)
#   VARIANT   l1 l3 l7 s0 s1 s2 l (default: all seven)
# Each line "verified RUNTIME PRECISION at HxW, batch B: max difference D of
# the fp32 PyTorch output magnitude" has D within the precision's bound (fp32:
# 1e-4); an export that differs more, or fails, prints its error, the others
# still run, and the script exits with status 1.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK_DIR="${1:-work_dirs/verify_all}"
shift || true
VARIANTS=("$@")
if [ ${#VARIANTS[@]} -eq 0 ]; then
    VARIANTS=(l1 l3 l7 s0 s1 s2 l)
fi
mkdir -p "$WORK_DIR" || exit 2
LOG="$WORK_DIR/verify_all.log"

checkpoint_args() {
    local name file
    name="$(basename "$1" .py)"
    file="${CHECKPOINT_DIR:-}/$name.pth"
    if [ -z "${CHECKPOINT_DIR:-}" ] || [ ! -f "$file" ]; then
        file="$WORK_DIR/${name}_random.pth"
        [ -f "$file" ] || python - "$1" "$file" <<'PY' >&2 || return 1
import sys
import torch
from mmengine.config import Config
from mmeformer.deployment import load_model
from mmeformer.testing import randomize_weights
torch.manual_seed(0)
model = randomize_weights(load_model(Config.fromfile(sys.argv[1])))
torch.save({'state_dict': model.state_dict()}, sys.argv[2])
PY
    fi
    echo --checkpoint "$file"
}

export_and_verify() {
    local config="$1" name="$2"
    shift 2
    echo "== $name" | tee -a "$LOG"
    # shellcheck disable=SC2046
    python "$REPO/tools/deployment/pytorch2onnx.py" "$config" \
        $(checkpoint_args "$config") --verify \
        --precision "${PRECISION:-fp32}" \
        --output-file "$WORK_DIR/$name.onnx" "$@" 2>&1 |
        grep -E '^(wrote|verified)|Error|error:|failed' | tee -a "$LOG"
}

status=0
for variant in "${VARIANTS[@]}"; do
    case "$variant" in
        l1 | l3 | l7) family=eformer ;;
        s0 | s1 | s2 | l) family=eformerv2 ;;
        *) echo "unknown variant $variant (l1 l3 l7 s0 s1 s2 l)" >&2; exit 2 ;;
    esac
    classifier="$REPO/configs/classification/${family}_${variant}_in1k.py"
    detector="$REPO/configs/detection/maskrcnn_${family}_${variant}_coco.py"
    export_and_verify "$classifier" "${variant}_classifier_224" \
        --shape 224 224 || status=1
    export_and_verify "$detector" "${variant}_backbone_dynamic" \
        --kind backbone --dynamic-export || status=1
    export_and_verify "$detector" "${variant}_backbone_800x1216" \
        --kind backbone --shape 800 1216 || status=1
done
exit $status
