#!/usr/bin/env bash
# Create (or refresh) the isolated environment mmeformer runs in.
#
# Usage: bash tools/setup_env.sh [--keep-torch]
#
#   --keep-torch     Use the torch / torchvision already installed for $PYTHON
#                    (e.g. a CUDA build on a GPU machine) instead of installing
#                    torch 2.13.0 / torchvision 0.28.0. The environment then
#                    sees the interpreter's site-packages.
#
# Environment variables:
#   PYTHON            interpreter to build the environment from (python3)
#   MMEFORMER_VENV    where the environment lives (<repo>/.venv)
#   MMEFORMER_CACHE   where built wheels are kept across clones
#                     (${XDG_CACHE_HOME:-~/.cache}/mmeformer)
#   MMEFORMER_KEEP_TORCH=1   same as --keep-torch
#
# The script is idempotent: every step checks what is already there first.
# The expensive step, compiling mmcv 2.1.0 with its ops, happens once per
# (mmcv, torch, Python) triple; the wheel is cached outside the clone.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="${MMEFORMER_VENV:-$REPO/.venv}"
CACHE="${MMEFORMER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmeformer}"
KEEP_TORCH="${MMEFORMER_KEEP_TORCH:-0}"
TORCH_VERSION=2.13.0
TORCHVISION_VERSION=0.28.0
MMCV_VERSION=2.1.0

for arg in "$@"; do
  case "$arg" in
    --keep-torch) KEEP_TORCH=1 ;;
    -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup_env.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

log() { printf '\033[1m[setup %(%H:%M:%S)T]\033[0m %s\n' -1 "$*"; }
START=$SECONDS

# 1. The virtual environment.
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtual environment at $VENV"
  if [[ "$KEEP_TORCH" == 1 ]]; then
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    "$PYTHON" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
export PIP_NO_WARN_SCRIPT_LOCATION=1
export PIP_CONSTRAINT="$REPO/requirements/constraints.txt"

# 2. Build tools. setuptools<82 keeps pkg_resources, which the mmcv build,
#    mmengine's `mmdet::` config resolution and openmim all import.
if ! "$PY" - <<'PY' 2>/dev/null
import importlib.metadata as m, sys
v = tuple(int(p) for p in m.version('setuptools').split('.')[:1])
for name in ('wheel', 'ninja', 'psutil'):
    m.version(name)
sys.exit(0 if v < (82,) else 1)
PY
then
  log "installing build tools"
  "${PIP[@]}" install -q 'setuptools<82' wheel ninja psutil
fi

# 3. torch / torchvision. Plain `pip install torch==2.13.0` may pick a local
#    CPU-only wheel that the index's torchvision cannot load with
#    ("operator torchvision::nms does not exist"), so the pair comes from
#    the index with find-links disabled.
if [[ "$KEEP_TORCH" == 1 ]]; then
  "$PY" -c 'import torch, torchvision' || {
    echo "setup_env.sh: --keep-torch needs torch and torchvision importable by $PYTHON" >&2; exit 1; }
  log "keeping torch $("$PY" -c 'import torch; print(torch.__version__)')"
elif ! "$PY" - <<PY 2>/dev/null
import sys
import torch
import torchvision  # raises when the pair does not match
ok = (torch.__version__.split('+')[0] == '$TORCH_VERSION'
      and torchvision.__version__.split('+')[0] == '$TORCHVISION_VERSION')
sys.exit(0 if ok else 1)
PY
then
  log "installing torch $TORCH_VERSION and torchvision $TORCHVISION_VERSION"
  # No config file and no find-links: only the index's builds.
  env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null "${PIP[@]}" install -q --no-input \
    --force-reinstall --no-deps "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
  env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null "${PIP[@]}" install -q --no-input \
    "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi

# 4. mmcv with its compiled ops, from a wheel cached per (mmcv, torch, Python).
if ! "$PY" -c "import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '$MMCV_VERSION')" 2>/dev/null; then
  KEY="$("$PY" -c "import sys, torch; print(f'mmcv$MMCV_VERSION-torch{torch.__version__}-py{sys.version_info.major}{sys.version_info.minor}')")"
  WHEEL_DIR="$CACHE/wheels/$KEY"
  if ! compgen -G "$WHEEL_DIR/mmcv-*.whl" >/dev/null; then
    log "building mmcv $MMCV_VERSION ($KEY) once; this takes about 15 minutes on 2 cores"
    BUILD="$(mktemp -d)"
    trap 'rm -rf "$BUILD"' EXIT
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation \
      -d "$BUILD" "mmcv==$MMCV_VERSION"
    tar -xzf "$BUILD"/mmcv-*.tar.gz -C "$BUILD"
    SRC="$(echo "$BUILD"/mmcv-$MMCV_VERSION)"
    # torch >= 2.14 headers need C++20; mmcv 2.1.0 hard-codes C++17.
    if "$PY" -c "import torch, sys; v = tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(v < (2, 14))"; then
      sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
    fi
    MAX_JOBS="${MAX_JOBS:-$(nproc)}" "${PIP[@]}" wheel -q --no-build-isolation --no-deps \
      -w "$BUILD/dist" "$SRC"
    mkdir -p "$WHEEL_DIR"
    # Move in atomically so an interrupted build never leaves a broken wheel.
    cp "$BUILD"/dist/mmcv-*.whl "$WHEEL_DIR/.partial.whl"
    mv "$WHEEL_DIR/.partial.whl" "$WHEEL_DIR/$(basename "$BUILD"/dist/mmcv-*.whl)"
  else
    log "reusing cached mmcv wheel from $WHEEL_DIR"
  fi
  "${PIP[@]}" install -q --no-deps "$WHEEL_DIR"/mmcv-*.whl
  # mmcv's own light dependencies (addict, yapf, ...), without touching torch.
  "${PIP[@]}" install -q "$WHEEL_DIR"/mmcv-*.whl
fi

# 5. The hosts and this package (editable), with test requirements.
#    mmeformer is installed in develop mode (mmeformer.egg-link in
#    site-packages), which makes the checkout the distribution's location.
#    mmengine (`_base_ = 'mmeformer::...'`) and MIM (`mim search/train/test`)
#    look for <location>/mmeformer/.mim; a PEP 660 editable install (what pip
#    does with setuptools >= 80) has site-packages as its location and no
#    mmeformer/ there. setuptools 80 and pip 25.3 dropped develop mode,
#    hence setuptools<80 (which keeps pkg_resources too) and pip<25.3.
STAMP="$VENV/.mmeformer-install-stamp"
WANT="$(cat "$REPO/setup.py" "$REPO"/requirements/*.txt 2>/dev/null | sha1sum | cut -c1-16):develop:$REPO"
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
  log "installing mmdet, mmsegmentation, mmpretrain and mmeformer (editable)"
  if ! "$PY" - <<'PY' 2>/dev/null
import importlib.metadata as m, sys
def version(name):
    return tuple(int(p) for p in m.version(name).split('.')[:2])
sys.exit(version('setuptools') >= (80,) or version('pip') >= (25, 3))
PY
  then
    "${PIP[@]}" install -q 'setuptools<80' 'pip<25.3'
  fi
  # openmim needs opendatalab, whose 0.0.10 pulls openxlab 0.1, which pins
  # setuptools~=60.2, requests~=2.28 and more: pip then downgrades them and
  # prints a resolver ERROR. mim imports neither; opendatalab 0.0.9 has no
  # such dependency.
  (cd "$REPO" && "${PIP[@]}" install -q --no-use-pep517 -e ".[tests]" 'opendatalab<0.0.10')
  # Checked from outside the checkout: inside it, mmeformer.egg-info in the
  # current folder would make any install mode look right.
  if ! (cd / && "$PY" - "$REPO" <<'PY' 2>/dev/null
import os.path as osp, sys
from mmengine.utils import get_installed_path
sys.exit(osp.realpath(get_installed_path('mmeformer'))
         != osp.join(osp.realpath(sys.argv[1]), 'mmeformer'))
PY
  ); then
    echo "setup_env.sh: mmeformer is not installed in develop mode, so" \
      "'mmeformer::' configs and 'mim search/train mmeformer' cannot find" \
      "its configs (see README, Installation)" >&2
    exit 1
  fi
  echo "$WANT" > "$STAMP"
fi

# 5b. Deployment (docs/deployment.md): exporters and runtimes from
#     requirements/deploy.txt, then MMDeploy without its pins (it pins
#     protobuf<=3.20.2, which onnx cannot use; deploy.txt lists what it
#     imports).
MMDEPLOY_VERSION=1.3.1
DEPLOY_STAMP="$VENV/.mmeformer-deploy-stamp"
DEPLOY_WANT="$(sha1sum < "$REPO/requirements/deploy.txt" | cut -c1-16):mmdeploy$MMDEPLOY_VERSION"
if [[ ! -f "$DEPLOY_STAMP" || "$(cat "$DEPLOY_STAMP")" != "$DEPLOY_WANT" ]]; then
  log "installing the deployment requirements and MMDeploy $MMDEPLOY_VERSION"
  "${PIP[@]}" install -q -r "$REPO/requirements/deploy.txt"
  "${PIP[@]}" install -q --no-deps "mmdeploy==$MMDEPLOY_VERSION"
  echo "$DEPLOY_WANT" > "$DEPLOY_STAMP"
fi

# 6. Verify: hosts import, mmcv ops run.
log "verifying the environment"
"$PY" "$REPO/tools/check_env.py"
log "environment ready in $((SECONDS - START)) s: $VENV"
