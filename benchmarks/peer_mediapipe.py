"""ros2_ctxpose against MediaPipe BlazePose: accuracy, people found and speed, in one run.

    python benchmarks/peer_mediapipe.py [--out-dir output/peer] [--max-frames 0] [pipeline settings]

ros2_ctxpose runs with the pipeline's defaults (``backend=auto``: OpenVINO on a CPU where it is
installed, its default precision; imgsz 640) unless told otherwise with the same flags as
``ctxpose infer`` (``--backend torch``, ``--precision fp32``, ``--imgsz 320``, ...).

Both methods see the same decoded frames on the same CPU, one after the other (never at once, so
neither slows the other):
- the annotated frames of ../shared/data/images (h36m, mpi_inf_3dhp, gta_im) for accuracy,
- those frames plus coco/bus.jpg and coco/zidane.jpg for people found per image,
- Sports2D's demo.mp4 (two people walking; from the sports2d wheel) for people per frame and speed.

BlazePose (mediapipe 0.10.21, ``mp.solutions.pose``, model_complexity=1) runs in ``.venv-mediapipe``
(scripts/setup_mediapipe.sh) through benchmarks/mediapipe_runner.py, which writes JSON; all scoring
happens here so both are scored by the same code. Images run BlazePose in ``static_image_mode``,
the video in its tracking mode; ros2_ctxpose detects afresh on every frame in both.

Accuracy is measured on the 12 joints both methods estimate (shoulders, elbows, wrists, hips,
knees, ankles), matched to each dataset's ground truth through ``core.joint_sets``: MPJPE after
aligning the mid-hips (BlazePose has no pelvis joint; its world landmarks are hip-centred metres in
the camera's orientation, x right, y down, z away from the camera, checked against the H36M frames)
and PA-MPJPE after a similarity alignment. Latency is per frame, decode excluded for both, after
untimed warm-up runs (ours: also one per distinct image size, since OpenVINO compiles per shape).
Outputs: a table on stdout (ending with ros2_ctxpose's FPS over BlazePose's on images and on the
video), ``peer_mediapipe.json`` and ``peer_mediapipe.png`` in ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

ROOT: Final[Path] = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package first, whatever the overlay holds

import numpy as np  # noqa: E402

from ros2_ctxpose.benchmarking import summarize, write_json  # noqa: E402
from ros2_ctxpose.benchmarking.peer import (  # noqa: E402
    ACCURACY_DATASETS,
    COUNT_ONLY_IMAGES,
    METHODS,
    PEER_JOINTS,
    aggregate,
    fps_ratios,
    load_annotated,
    people_counts,
    report,
    score,
)
from ros2_ctxpose.core.camera import CameraModel  # noqa: E402
from ros2_ctxpose.core.media.images import read_image  # noqa: E402
from ros2_ctxpose.core.media.inputs import iter_frames  # noqa: E402
from ros2_ctxpose.core.media.videos import demo_video_path  # noqa: E402

RUNNER: Final[Path] = Path(__file__).with_name("mediapipe_runner.py")
PEER_PYTHON: Final[Path] = ROOT / ".venv-mediapipe" / "bin" / "python"


def run_blazepose(images: list[Path], video: Path, max_frames: int, warmup: int) -> dict[str, Any]:
    """Run mediapipe_runner.py in .venv-mediapipe and return its JSON."""
    if not PEER_PYTHON.is_file():  # first run: build the peer's own venv (pinned, idempotent)
        subprocess.run(["bash", str(ROOT / "scripts" / "setup_mediapipe.sh")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        jobs, out = Path(tmp) / "jobs.json", Path(tmp) / "out.json"
        jobs.write_text(
            json.dumps(
                {
                    "images": [str(p) for p in images],
                    "video": str(video),
                    "max_frames": max_frames,
                    "warmup": warmup,
                    "model_complexity": 1,
                }
            )
        )
        completed = subprocess.run(
            [str(PEER_PYTHON), str(RUNNER), "--jobs", str(jobs), "--out", str(out)], capture_output=True, text=True
        )
        if completed.returncode != 0:
            raise RuntimeError(f"mediapipe_runner failed ({completed.returncode}):\n{completed.stderr[-2000:]}")
        return json.loads(out.read_text())


def run_ours(
    pipeline: Any,
    images: list[Path],
    cameras: dict[Path, CameraModel],
    video: Path,
    max_frames: int,
    warmup: int,
    hfov_deg: float,
) -> dict[str, list[dict[str, Any]]]:
    """ros2_ctxpose on the same frames: people (2D keypoints, 3D joints) and per-frame latency."""

    def timed(image: np.ndarray, camera: CameraModel) -> tuple[Any, float]:
        start = time.perf_counter()
        result = pipeline(image, camera)
        return result, (time.perf_counter() - start) * 1000.0

    def item(source: str, result: Any, latency: float) -> dict[str, Any]:
        return {
            "source": source,
            "latency_ms": latency,
            "people": [
                {"keypoints_2d": np.asarray(p.keypoints_2d), "joints_3d": np.asarray(p.joints_3d)}
                for p in result.people
            ],
        }

    decoded = [(path, read_image(path)) for path in images]
    camera_of = {
        path: cameras.get(path) or CameraModel.from_fov(img.shape[1], img.shape[0], hfov_deg) for path, img in decoded
    }
    for _ in range(warmup):
        timed(decoded[0][1], camera_of[decoded[0][0]])
    # OpenVINO compiles the network once per input shape (0.3-1 s each, cached): a camera has one
    # shape, these frames have a few, so each size is run once untimed as well.
    for _, image in {img.shape: (path, img) for path, img in reversed(decoded)}.values():
        timed(image, CameraModel.from_fov(image.shape[1], image.shape[0], hfov_deg))
    out: dict[str, list[dict[str, Any]]] = {"images": [], "video": []}
    for path, image in decoded:
        out["images"].append(item(str(path), *timed(image, camera_of[path])))
    camera = None
    for frame in iter_frames([video]):
        if frame.image is None:
            raise RuntimeError(f"cannot read {frame.name}: {frame.error}")
        if max_frames > 0 and len(out["video"]) >= max_frames:
            break
        camera = camera or CameraModel.from_fov(frame.image.shape[1], frame.image.shape[0], hfov_deg)
        result, latency = timed(frame.image, camera)
        if frame.index >= warmup:
            out["video"].append(item(frame.name, result, latency))
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = dict(zip(METHODS, ("tab:blue", "tab:orange"), strict=True))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    groups = [*ACCURACY_DATASETS, "all"]
    x = np.arange(len(groups))
    for offset, method in zip((-0.2, 0.2), METHODS, strict=True):
        pa = [results["accuracy"][g][method]["pa_mpjpe_mm"] or 0.0 for g in groups]
        raw = [results["accuracy"][g][method]["mpjpe_mm"] or 0.0 for g in groups]
        axes[0].bar(x + offset, raw, 0.4, color=colours[method], alpha=0.35, label=f"{method} MPJPE (mid-hip)")
        axes[0].bar(x + offset, pa, 0.4, color=colours[method], label=f"{method} PA-MPJPE")
    axes[0].set(xticks=x, xticklabels=groups, ylabel="mm (lower is better)", title="3D error, 12 shared joints")
    axes[0].legend(fontsize=7)
    where = ("images", "video")
    for offset, method in zip((-0.2, 0.2), METHODS, strict=True):
        med = [results["latency"][w][method]["median_ms"] for w in where]
        p90 = [results["latency"][w][method]["p90_ms"] for w in where]
        axes[1].bar(
            np.arange(2) + offset,
            med,
            0.4,
            color=colours[method],
            label=method,
            yerr=[np.zeros(2), np.subtract(p90, med)],
            capsize=4,
        )
    axes[1].set(
        xticks=np.arange(2),
        xticklabels=where,
        ylabel="ms per frame (bar p50, whisker p90)",
        title="Latency on this CPU, decode excluded",
    )
    axes[1].legend(fontsize=7)
    for method in METHODS:
        axes[2].plot(results["people"]["video"][method], color=colours[method], label=method, drawstyle="steps-mid")
    axes[2].set(xlabel="demo.mp4 frame", ylabel="people found", title="People per frame of demo.mp4")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from ros2_ctxpose.cli.config_args import add_config_arguments, config_from_args
    from ros2_ctxpose.core.paths import shared_data_dir
    from ros2_ctxpose.core.pipeline import Pose3DPipeline

    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--out-dir", type=Path, default=ROOT / "output" / "peer")
    parser.add_argument("--max-frames", type=int, default=0, help="video frames to time (0: all)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before timing, per method")
    parser.add_argument(
        "--hfov",
        type=float,
        default=60.0,
        help="horizontal FOV assumed for frames without intrinsics (coco, demo video)",
    )
    add_config_arguments(parser)  # ros2_ctxpose's settings, named as the node's parameters
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as error:
        parser.error(str(error))

    try:
        images_dir = shared_data_dir() / "data" / "images"
        annotated = load_annotated(images_dir)
        count_only = [images_dir / name for name in COUNT_ONLY_IMAGES]
        video = demo_video_path()
        images = [a.path for a in annotated] + count_only
        peer = run_blazepose(images, video, args.max_frames, args.warmup)
        pipeline = Pose3DPipeline.from_config(config)
        ours = run_ours(
            pipeline, images, {a.path: a.camera for a in annotated}, video, args.max_frames, args.warmup, args.hfov
        )
    except (FileNotFoundError, RuntimeError, OSError, ValueError) as error:
        print(f"peer_mediapipe: {error}", file=sys.stderr)
        return 1

    rows = score(annotated, ours["images"], peer["images"], peer["landmark_names"])
    n_acc = len(annotated)
    results = {
        "peer": {
            "name": "MediaPipe BlazePose",
            "version": peer["mediapipe_version"],
            "model_complexity": peer["model_complexity"],
        },
        "ours": {
            "backend": pipeline.detector.backend,
            "precision": pipeline.detector.precision,
            "imgsz": pipeline.detector.imgsz,
            "device": str(pipeline.device),
            "cpu_threads": config.cpu_threads,
        },
        "joints": list(PEER_JOINTS),
        "accuracy": {
            dataset or "all": {m: aggregate(rows, m, dataset) for m in METHODS}
            for dataset in (*ACCURACY_DATASETS, None)
        },
        "per_image": rows,
        "people": {
            "images": people_counts(ours["images"], peer["images"]),
            "video": people_counts(ours["video"], peer["video"]),
            "image_names": [str(p.relative_to(images_dir)) for p in images],
            "annotated_images": n_acc,
        },
        "latency": {
            where: {
                "ros2_ctxpose": summarize(i["latency_ms"] for i in ours[where]).as_dict(),
                "blazepose": summarize(i["latency_ms"] for i in peer[where]).as_dict(),
            }
            for where in ("images", "video")
        },
    }
    results["fps_ratio"] = fps_ratios(results["latency"])
    print(report(results))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_json(args.out_dir / "peer_mediapipe.json", "peer-mediapipe", results)
    print(f"wrote {args.out_dir / 'peer_mediapipe.json'}")
    try:
        plot(results, args.out_dir / "peer_mediapipe.png")
    except ImportError:
        print("peer_mediapipe: matplotlib is not installed in this environment; no chart written", file=sys.stderr)
        return 1
    print(f"wrote {args.out_dir / 'peer_mediapipe.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
