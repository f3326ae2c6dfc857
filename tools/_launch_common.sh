# Sourced by the launch scripts (dist_*.sh, slurm_*.sh), after they set TOOLS.

# The calling script's leading comment block: its --help.
print_usage() {
  awk 'NR == 1 {next} /^#/ {sub(/^# ?/, ""); print; next} {exit}' "$1"
}

# The interpreter, as $PYTHON. An explicit PYTHON wins; otherwise the
# project's virtual environment (made by tools/setup_env.sh), so the scripts
# work without activating it.
if [[ -z "${PYTHON:-}" ]]; then
  _venv="${MMEFORMER_VENV:-$(dirname "$TOOLS")/.venv}"
  if [[ -x "$_venv/bin/python" ]]; then
    PYTHON="$_venv/bin/python"
  else
    PYTHON=python3
  fi
  unset _venv
fi

# Print the usage and exit: 0 for -h/--help, 2 when fewer than $1 arguments
# follow. Usage: check_args MIN_ARGS "$@"
check_args() {
  local min_args=$1
  shift
  if [[ $# -ge 1 && ( "$1" == -h || "$1" == --help ) ]]; then
    print_usage "$0"; exit 0
  elif [[ $# -lt $min_args ]]; then
    print_usage "$0" >&2; exit 2
  fi
}

# Run a tool with torchrun on this node: NNODES, NODE_RANK, MASTER_ADDR and
# PORT from the environment, $GPUS processes.
# Usage: run_torchrun GPUS TOOL_SCRIPT [ARGS...]
run_torchrun() {
  local gpus=$1
  shift
  exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" \
    --nproc_per_node="$gpus" \
    "$@"
}

# Run a tool under srun, one task per GPU: GPUS, GPUS_PER_NODE,
# CPUS_PER_TASK and SRUN_ARGS from the environment.
# Usage: run_srun PARTITION JOB_NAME TOOL_SCRIPT [ARGS...]
run_srun() {
  local partition=$1 job_name=$2
  shift 2
  local gpus_per_node=${GPUS_PER_NODE:-8}
  set -x
  # shellcheck disable=SC2086  # SRUN_ARGS holds several words
  srun -p "$partition" \
    --job-name="$job_name" \
    --gres=gpu:"$gpus_per_node" \
    --ntasks="${GPUS:-8}" \
    --ntasks-per-node="$gpus_per_node" \
    --cpus-per-task="${CPUS_PER_TASK:-5}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS:-} \
    "$PYTHON" -u "$@"
}
