#!/usr/bin/env bash
# Train with one process per GPU (or several CPU processes) through torchrun.
#
# Usage: bash tools/dist_train.sh CONFIG GPUS [tools/train.py options...]
#
#   GPUS         processes per node: one per GPU; on a machine without CUDA,
#                that many CPU processes (gloo backend, see
#                mmeformer/engine/distributed.py)
# Environment:
#   NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500)
#   PYTHON       interpreter; defaults to the project's virtual environment
#                ($MMEFORMER_VENV or .venv) when there is one, else python3
#
# Example: bash tools/dist_train.sh configs/detection/maskrcnn_eformerv2_s0_coco.py 8
set -euo pipefail

TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$TOOLS/_launch_common.sh"
check_args 2 "$@"
run_torchrun "$2" "$TOOLS/train.py" "$1" --launcher pytorch "${@:3}"
