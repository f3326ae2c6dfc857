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
check_args 4 "$@"
run_srun "$1" "$2" "$TOOLS/train.py" "$3" --work-dir="$4" --launcher=slurm \
  "${@:5}"
