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
