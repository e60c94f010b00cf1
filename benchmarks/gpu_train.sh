#!/usr/bin/env bash
# How the lifter trains on a lent GPU: the context branch of the shipped weights, trained on the
# rendered people of .cache/gpu_train/ (benchmarks/gpu_train_prepare.sh first, here) with
# `ctxpose train --device cuda` (the model, its batches and the loss on the GPU; batches are drawn
# on the CPU and moved), the geometry frozen, as the shipped context branch was (MODEL_CARD.md).
# Prints the steps per second and the S11 result: S11 mocap (geometry path) and the held-out S11
# renders with and without context, from <out>/metrics.jsonl; writes $OUT/gpu_train.json when
# $OUT is set. ROS-free: python3 with torch (CUDA build), numpy, opencv, PyYAML, tqdm.
# Stops training after GPU_TRAIN_TIMEOUT s (default 420; the device budget is 15 minutes in all)
# and still prints what the evaluations so far measured. GPU_TRAIN_STEPS (default 3000) steps,
# evaluated halfway and at the end; steps/s is from the first half (no evaluation in it). The run
# folder is GPU_TRAIN_RUN (default output/gpu_train_run). Extra arguments go to `ctxpose train`
# (later flags win):
#   bash benchmarks/gpu_train.sh                                    # on the GPU machine
#   GPU_TRAIN_STEPS=4 bash benchmarks/gpu_train.sh --device cpu     # dry run anywhere
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
DATA=.cache/gpu_train
[[ -d $DATA/train && -d $DATA/val ]] || { echo "gpu_train: no $DATA: run benchmarks/gpu_train_prepare.sh first" >&2; exit 2; }
export CTXPOSE_SHARED="$ROOT/$DATA/shared" PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
RUN="${GPU_TRAIN_RUN:-output/gpu_train_run}"
rm -rf "$RUN"
steps="${GPU_TRAIN_STEPS:-3000}"
limit="${GPU_TRAIN_TIMEOUT:-420}"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
status=0
timeout "$limit" "$PYTHON" -m ros2_ctxpose.training.train --out "$RUN" --device cuda --threads 4 \
  --init shipped --renders "$DATA/train" --render-fraction 1.0 --context --context-depth-only --no-train-geometry \
  --batch-size 256 --lr 2e-4 --steps "$steps" --eval-every "$(( (steps + 1) / 2 ))" --seed 0 \
  --val-renders "$DATA/val" "$@" || status=$?
[[ $status -eq 124 ]] && echo "gpu_train: stopped after ${limit} s (GPU_TRAIN_TIMEOUT); the figures below are those measured so far" >&2
"$PYTHON" - "$RUN/metrics.jsonl" "${OUT:+$OUT/gpu_train.json}" <<'PY'
import json, sys
from pathlib import Path
log = Path(sys.argv[1])
records = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
if not records:
    raise SystemExit("gpu_train: no evaluation finished: nothing measured")
first = records[0]  # elapsed_s is taken before its evaluation: training steps only
print(f"training: {first['step']} steps in {first['elapsed_s']:.1f} s: {first['step'] / first['elapsed_s']:.2f} steps/s")
for r in records:
    figures = {k: v for k, v in r.items() if k.endswith("mpjpe_mm") and k.startswith(("exact", "detlike", "val_"))}
    print(f"step {r['step']}: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(figures.items())))
if len(sys.argv) > 2 and sys.argv[2]:
    Path(sys.argv[2]).parent.mkdir(parents=True, exist_ok=True)
    Path(sys.argv[2]).write_text(json.dumps({"steps_per_s": first["step"] / first["elapsed_s"], "records": records}, indent=1))
PY
exit "$status"
