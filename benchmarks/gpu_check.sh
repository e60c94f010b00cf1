#!/usr/bin/env bash
# The GPU proof, one command for the lent GPU machine (see benchmarks/gpu_check.py for what it
# checks and measures; benchmarks/gpu_check_prepare.sh first, here). ROS-free: needs python3
# with torch (CUDA build), numpy and opencv; reads .cache/gpu_check (carried), writes JSON to
# $OUT/gpu_check.json when $OUT is set. Stops itself after 280 s (the budget is 5 minutes;
# GPU_CHECK_TIMEOUT=seconds changes that, e.g. for a dry run on a busy CPU).
#   bash benchmarks/gpu_check.sh                # on the GPU machine
#   bash benchmarks/gpu_check.sh --device cpu   # dry run anywhere (e.g. after source scripts/env.sh)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if compgen -G ".cache/gpu_check/wheels/*.whl" > /dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/gpu_check_site .cache/gpu_check/wheels/*.whl
  export PYTHONPATH="/tmp/gpu_check_site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
if [[ -z "${OUT:-}" ]] && ! printf '%s\n' "$@" | grep -q -- '--json'; then
  set -- "$@" --json output/gpu_check/gpu_check.json
fi
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PYTHON" -c "import torch, numpy, cv2; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'numpy', numpy.__version__, 'cv2', cv2.__version__)"
limit="${GPU_CHECK_TIMEOUT:-280}"
status=0
timeout "$limit" "$PYTHON" benchmarks/gpu_check.py "$@" || status=$?
if [[ $status -eq 124 ]]; then
  echo "gpu_check: stopped after ${limit} s (GPU_CHECK_TIMEOUT); the figures above are incomplete" >&2
fi
exit "$status"
