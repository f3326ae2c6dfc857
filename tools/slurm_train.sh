#!/usr/bin/env bash
# Train on a Slurm cluster: srun starts one task per GPU.
#
# Usage: bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py options...]
#
# Environment:
#   GPUS (8)            tasks in all
#   GPUS_PER_NODE (8)   tasks and GPUs per node
#   CPUS_PER_TASK (5)   CPU cores per task (data loading workers)
#   SRUN_ARGS           extra srun arguments
#   PYTHON              interpreter; defaults to the project's virtual
#                       environment ($MMEFORMER_VENV or .venv), else python3
#
# Example: GPUS=16 bash tools/slurm_train.sh gpu eformer CONFIG work_dirs/eformer
set -euo pipefail

TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$TOOLS/_launch_common.sh"
if [[ $# -ge 1 && ( "$1" == -h || "$1" == --help ) ]]; then
  print_usage "${BASH_SOURCE[0]}"; exit 0
elif [[ $# -lt 4 ]]; then
  print_usage "${BASH_SOURCE[0]}" >&2; exit 2
fi

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}

set -x
# shellcheck disable=SC2086  # SRUN_ARGS holds several words
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "$PYTHON" -u "$TOOLS/train.py" "$CONFIG" --work-dir="$WORK_DIR" \
    --launcher=slurm "${@:5}"
