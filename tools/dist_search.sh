#!/usr/bin/env bash
# Search a supernet with one process per GPU (or several CPU processes):
# each step's candidates are spread over the processes.
#
# Usage: bash tools/dist_search.sh CONFIG CHECKPOINT GPUS [tools/search.py options...]
#
#   GPUS         processes per node: one per GPU; on a machine without CUDA,
#                that many CPU processes (gloo backend)
# Environment:
#   NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500)
#   PYTHON       interpreter; defaults to the project's virtual environment
#                ($MMEFORMER_VENV or .venv) when there is one, else python3
#
# Example: bash tools/dist_search.sh configs/search/eformerv2_supernet_in1k.py \
#   SUPERNET.pth 8 --latency-table TABLE --max-latency 2.0 --max-params 5
set -euo pipefail

TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$TOOLS/_launch_common.sh"
check_args 3 "$@"
run_torchrun "$3" "$TOOLS/search.py" "$1" "$2" --launcher pytorch "${@:4}"
