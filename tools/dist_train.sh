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
if [[ $# -ge 1 && ( "$1" == -h || "$1" == --help ) ]]; then
  print_usage "${BASH_SOURCE[0]}"; exit 0
elif [[ $# -lt 2 ]]; then
  print_usage "${BASH_SOURCE[0]}" >&2; exit 2
fi

CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$GPUS" \
    "$TOOLS/train.py" "$CONFIG" --launcher pytorch "${@:3}"
