#!/usr/bin/env bash
# Evaluate a checkpoint with one process per GPU (or several CPU processes).
#
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py options...]
#
#   GPUS         processes per node: one per GPU; on a machine without CUDA,
#                that many CPU processes (gloo backend)
# Environment:
#   NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500)
#   PYTHON       interpreter; defaults to the project's virtual environment
#                ($MMEFORMER_VENV or .venv) when there is one, else python3
#
# Example: bash tools/dist_test.sh CONFIG work_dirs/CONFIG/epoch_12.pth 8
set -euo pipefail

TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$TOOLS/_launch_common.sh"
if [[ $# -ge 1 && ( "$1" == -h || "$1" == --help ) ]]; then
  print_usage "${BASH_SOURCE[0]}"; exit 0
elif [[ $# -lt 3 ]]; then
  print_usage "${BASH_SOURCE[0]}" >&2; exit 2
fi

CONFIG=$1
CHECKPOINT=$2
GPUS=$3
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
    "$TOOLS/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
