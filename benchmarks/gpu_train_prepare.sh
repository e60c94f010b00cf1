#!/usr/bin/env bash
# Prepare the GPU training proof (benchmarks/gpu_train.sh) on this machine, which has the data: the
# lent GPU machine has Python 3.12 with CUDA torch, numpy, opencv-python-headless, PyYAML and tqdm,
# no network, and receives only this repository's tree plus the git-ignored paths a call names in
# `carry` (64 MiB in all). So .cache/gpu_train/ (ignored by /.cache/) gets:
#   shared/data/h36m/       the Human3.6M mocap and cameras (27 MB): mocap batches' source, S11 result
#   train/, val/            whole shards of two `ctxpose synth` sets, only what the trainer reads
#                           (meta.json and the lifter's fields: no images, no detector outputs),
#                           as many shards as fit TRAIN_MB / VAL_MB (default 26 / 8)
# The shipped lifter weights the run starts from are in the repository.
#
# Usage: bash benchmarks/gpu_train_prepare.sh TRAIN_SET VAL_SET
#   e.g. TRAIN_SET from `ctxpose synth --out T --people 300 --seed 0`, VAL_SET from
#   `ctxpose synth --out V --people 60 --subjects S11 --seed 1` (S11: the held-out subject)
# Then, with the device tool: run(command="bash benchmarks/gpu_train.sh", carry=[".cache/gpu_train"],
# timeout_s=540). Dry run here: GPU_TRAIN_STEPS=4 bash benchmarks/gpu_train.sh --device cpu
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[[ $# -eq 2 ]] || { sed -n '2,17p' "${BASH_SOURCE[0]}"; exit 2; }
# shellcheck disable=SC1091
source scripts/env.sh
DEST=.cache/gpu_train
rm -rf "$DEST"
mkdir -p "$DEST/shared/data/h36m"
python - "$DEST" "$1" "$2" "${TRAIN_MB:-26}" "${VAL_MB:-8}" <<'PY'
import json, shutil, sys
from pathlib import Path
from ros2_ctxpose.core.paths import shared_data_dir
from ros2_ctxpose.training.synthetic.schema import LIFTER_FIELDS
from ros2_ctxpose.training.synthetic.shards import list_shards

dest, train, val, train_mb, val_mb = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), *map(float, sys.argv[4:])
for name in ("poses_world17_mm.npz", "cameras.json"):
    shutil.copyfile(shared_data_dir() / "data" / "h36m" / name, dest / "shared" / "data" / "h36m" / name)
for source, name, budget in ((train, "train", train_mb), (val, "val", val_mb)):
    used, people, shards = 0, 0, 0
    for shard in list_shards(source):
        files = [shard / "meta.json"] + [shard / f"{field}.npy" for field in LIFTER_FIELDS]
        size = sum(f.stat().st_size for f in files)
        if used + size > budget * 1e6:
            break
        (dest / name / shard.name).mkdir(parents=True)
        for f in files:
            shutil.copyfile(f, dest / name / shard.name / f.name)
        used, shards = used + size, shards + 1
        people += int(json.loads((shard / "meta.json").read_text())["people"])
    if not shards:
        raise SystemExit(f"no shard of {source} fits {budget} MB")
    print(f"{name}: {shards} shards of {source}, {people} people, {used / 1e6:.1f} MB")
PY
du -sh "$DEST"
echo "ready: carry .cache/gpu_train and run: bash benchmarks/gpu_train.sh"
