"""``ctxpose synth`` on a local process pool vs on Ray: people/s, people/s per core, images/s.

    source scripts/env.sh && nice python benchmarks/synth_throughput.py --people 200 --workers 2 --seed 5

Each repeat runs the same command twice into fresh folders, once with the pool (``--workers W``)
and once with ``--ray auto`` (a local Ray started with W CPUs, one actor each), alternating which
goes first, so load that comes and goes on a shared machine hits both alike. Same seed, so both
make the same shards: the script lists the files whose bytes differ (the renderer itself is not
byte-reproducible from run to run: two pool runs differ in a few pixels of a few images, and so in
those images' detector outputs; see docs/SYNTHETIC_DATA.md). Figures per run: the engine's
throughput from ``summary.json`` (from starting the engine, workers' loading included, to the
last shard) and the whole command's wall time (pose library, summary, Ray's start included).
Printed: every run, then the median per engine and Ray's share of the pool's people/s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENGINES = ("pool", "ray")


def run_once(engine: str, out: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "ros2_ctxpose.cli.main", "synth", "--out", str(out)]
    command += ["--people", str(args.people), "--workers", str(args.workers), "--seed", str(args.seed)]
    command += ["--images-per-shard", str(args.images_per_shard), "--subjects", args.subjects]
    command += ["--ray", "auto"] if engine == "ray" else []
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{engine}: {' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    t = summary["throughput"]
    people = t["people_per_s"] * t["seconds"]
    steady = steady_rate(out, args.workers)
    return {
        "engine": engine,
        "people": round(people),
        "people_per_s": t["people_per_s"],
        "people_per_s_per_core": t["people_per_s"] / args.workers,
        "images_per_s": t["images_per_s"],
        "engine_s": t["seconds"],
        "wall_s": wall,
        "people_per_s_wall": people / wall,
        "steady_people_per_s": steady,
    }


def steady_rate(out: Path, workers: int) -> float:
    """People/s once every worker has made its first shard (start-up excluded: what a long run
    sees): the people of the later shards over the time from the ``workers``-th shard to the last,
    from the shard folders' modification times (each is renamed into place when complete)."""
    done = sorted(
        (p.stat().st_mtime, json.loads((p / "meta.json").read_text())["people"]) for p in out.glob("shard_[0-9]*")
    )
    if len(done) <= workers:
        return float("nan")
    later = done[workers:]
    return sum(people for _, people in later) / (later[-1][0] - done[workers - 1][0])


def shard_bytes(root: Path) -> dict[str, bytes]:
    """Every file of every shard (arrays, meta.json, images): nothing in them names a host or a time."""
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.glob("shard_*/**/*")) if f.is_file()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="pool processes; Ray: CPUs of the local Ray")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--images-per-shard", type=int, default=32)
    parser.add_argument("--subjects", default="S1,S5,S6,S7,S8")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the runs here")
    parser.add_argument("--keep", type=Path, default=None, help="keep the output folders here (default: deleted)")
    args = parser.parse_args()

    root = Path(args.keep or tempfile.mkdtemp(prefix="synth_throughput_"))
    runs: list[dict] = []
    identical = []
    try:
        for repeat in range(args.repeats):
            order = ENGINES if repeat % 2 == 0 else ENGINES[::-1]
            outs = {}
            for engine in order:
                outs[engine] = root / f"{repeat}_{engine}"
                shutil.rmtree(outs[engine], ignore_errors=True)
                run = {"repeat": repeat, **run_once(engine, outs[engine], args)}
                runs.append(run)
                print(
                    f"repeat {repeat} {engine:4s}: {run['people']} people, {run['people_per_s']:.2f} people/s "
                    f"({run['people_per_s_per_core']:.2f} per core), {run['images_per_s']:.2f} images/s, "
                    f"steady {run['steady_people_per_s']:.2f} people/s, engine {run['engine_s']:.0f} s, "
                    f"command {run['wall_s']:.0f} s",
                    flush=True,
                )
            pool_files, ray_files = shard_bytes(outs["pool"]), shard_bytes(outs["ray"])
            differ = sorted(
                name for name in pool_files.keys() | ray_files.keys() if pool_files.get(name) != ray_files.get(name)
            )
            identical.append(not differ)
            print(f"repeat {repeat}: {len(differ)} of {len(pool_files)} shard files differ, pool vs Ray: {differ[:6]}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)

    print(f"\n{args.people} people, {args.workers} workers/CPUs, seed {args.seed}, {args.repeats} repeats (medians):")
    medians = {}
    for engine in ENGINES:
        mine = [r for r in runs if r["engine"] == engine]
        medians[engine] = {key: statistics.median(r[key] for r in mine) for key in mine[0] if key not in ("engine",)}
        m = medians[engine]
        print(
            f"  {engine:4s}: {m['people_per_s']:.2f} people/s, {m['people_per_s_per_core']:.2f} people/s/core, "
            f"{m['images_per_s']:.2f} images/s; steady {m['steady_people_per_s']:.2f} people/s; "
            f"whole command {m['people_per_s_wall']:.2f} people/s ({m['wall_s']:.0f} s)"
        )
    ratios = {
        what: 100 * medians["ray"][key] / medians["pool"][key]
        for what, key in (
            ("engine", "people_per_s"),
            ("steady", "steady_people_per_s"),
            ("whole command", "people_per_s_wall"),
        )
    }
    print("  Ray / pool: " + ", ".join(f"{ratio:.0f} % ({what})" for what, ratio in ratios.items()))
    print(f"  identical shards, pool vs Ray: {sum(identical)}/{len(identical)} repeats")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
