#!/usr/bin/env bash
# Search a supernet on a Slurm cluster: srun starts one task per GPU, and
# each step's candidates are spread over the tasks.
#
# Usage: bash tools/slurm_search.sh PARTITION JOB_NAME CONFIG CHECKPOINT [tools/search.py options...]
#
# Environment:
#   GPUS (8)            tasks in all
#   GPUS_PER_NODE (8)   tasks and GPUs per node
#   CPUS_PER_TASK (5)   CPU cores per task (data loading workers)
#   SRUN_ARGS           extra srun arguments
#   PYTHON              interpreter; defaults to the project's virtual
#                       environment ($MMEFORMER_VENV or .venv), else python3
#
# Example: bash tools/slurm_search.sh gpu search CONFIG SUPERNET.pth \
#   --latency-table TABLE --max-latency 2.0 --work-dir work_dirs/search
set -euo pipefail

TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$TOOLS/_launch_common.sh"
check_args 4 "$@"
run_srun "$1" "$2" "$TOOLS/search.py" "$3" "$4" --launcher=slurm "${@:5}"
