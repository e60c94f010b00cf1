"""The main job, without a ROS installation: camera -> pose3d_node -> what a user can look at.

Starts demo_publisher (real two-person footage as a camera) and pose3d_node as two processes in a
namespace of their own, listens to ``human/pose3d`` and its overlay, prints a summary line per
second (people, output rate, latency) and writes under ``--out``: ``demo_overlay.mp4`` (the 2D
overlay next to a top view of the 3D skeletons, in metres), ``best_frame.jpg`` (the frame with the
most confidently detected people) and ``poses.jsonl`` (every Skeleton3DArray, one JSON object per
line). It stops after ``--duration`` seconds of results or ``--frames`` results, and exits
non-zero if nothing came out.

    python -m ros2_ctxpose.ros.demo_run --duration 60 --out output/demo
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import cv2
import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image

from ros2_ctxpose.core.overlay import colour_for
from ros2_ctxpose.core.results import FrameResult, frame_record, to_json
from ros2_ctxpose.core.skeleton import H36M17_BONES
from ros2_ctxpose.msg import Skeleton3DArray
from ros2_ctxpose.ros.image_codec import decode_image
from ros2_ctxpose.ros.messages import people_from_message

NAMESPACE = "/ctxpose_demo"
STARTUP_TIMEOUT_S = 300.0
#: best_frame.jpg shows the frame with the most people detected at least this confidently (weaker
#: detections include the duplicates a person cut off by the image border can produce).
BEST_FRAME_MIN_SCORE = 0.5


def default_params_file() -> Path:
    """config/pose3d.yaml of the source tree this module runs from, else the installed package's."""
    source_tree = Path(__file__).resolve().parents[2] / "config" / "pose3d.yaml"
    if source_tree.is_file():
        return source_tree
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("ros2_ctxpose")) / "config" / "pose3d.yaml"


def _seconds(duration) -> float:
    """Seconds of a Duration or Time message (both have sec and nanosec)."""
    return duration.sec + duration.nanosec * 1e-9


def _key(stamp) -> tuple[int, int]:
    return (stamp.sec, stamp.nanosec)


def top_view(skeletons: Skeleton3DArray, height: int, range_m: float = 12.0) -> np.ndarray:
    """A bird's-eye view of the skeletons (camera at the bottom, x right, depth up), 1 m grid."""
    size = (height, height)
    panel = np.full(size + (3,), 32, np.uint8)
    scale = height / range_m  # pixels per metre
    origin = np.array([height / 2.0, height - 10.0])

    def to_px(xz: np.ndarray) -> np.ndarray:
        return np.rint(origin + np.stack([xz[..., 0], -xz[..., 1]], axis=-1) * scale).astype(np.int32)

    for metres in range(1, int(range_m) + 1):
        y = int(origin[1] - metres * scale)
        cv2.line(panel, (0, y), (height, y), (60, 60, 60), 1)
        cv2.putText(panel, f"{metres} m", (4, y - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (140, 140, 140), 1)
    cv2.drawMarker(panel, tuple(to_px(np.zeros(2)).tolist()), (255, 255, 255), cv2.MARKER_TRIANGLE_UP, 14, 2)
    for s in skeletons.skeletons:
        joints = np.array([[p.x, p.z] for p in s.joint_positions])
        px, colour = to_px(joints), colour_for(s.id)
        for a, b in H36M17_BONES:
            cv2.line(panel, tuple(px[a].tolist()), tuple(px[b].tolist()), colour, 2, cv2.LINE_AA)
        label = f"#{s.id} {s.root_position.z:.1f} m"
        cv2.putText(panel, label, tuple((px[0] + [8, 0]).tolist()), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1)
    cv2.putText(panel, "top view (3D)", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (220, 220, 220), 1)
    return panel


def skeletons_record(msg: Skeleton3DArray) -> dict:
    """A poses.jsonl line: the stamp and frame, the node's latency (image stamp to publication)
    and the people in ``core.results``' format (docs/OUTPUT_FORMAT.md)."""
    result = FrameResult(people_from_message(msg), {"total": _seconds(msg.processing_latency) * 1000.0})
    return frame_record(result, stamp=_seconds(msg.header.stamp), frame_id=msg.header.frame_id)


class RateMatchedVideo:
    """An MP4 that plays back in real time: written at the rate its frames came in, measured from
    their stamps over the whole run, not at a fixed guess (5 fps made 60 s of ~30 Hz results play
    for 6 minutes).

    The rate is known only at the end, and OpenCV cannot change a written file's rate, so frames go
    to a provisional file first; ``close`` re-encodes it once at the measured rate (or just renames
    it when the provisional rate was right)."""

    PROVISIONAL_FPS = 30.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self._partial = path.with_name(path.stem + ".partial" + path.suffix)
        self._writer: cv2.VideoWriter | None = None
        self._stamps: list[float] = []

    def write(self, frame: np.ndarray, stamp_s: float) -> None:
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._writer = cv2.VideoWriter(str(self._partial), fourcc, self.PROVISIONAL_FPS, frame.shape[1::-1])
        self._writer.write(frame)
        self._stamps.append(stamp_s)

    def measured_fps(self) -> float | None:
        """Frames per second of the stamps written so far; None before two distinct stamps."""
        span = self._stamps[-1] - self._stamps[0] if self._stamps else 0.0
        return (len(self._stamps) - 1) / span if span > 0 else None

    def close(self) -> float | None:
        """Finish the file at the measured rate; returns that rate (None: no frames, or too few to
        measure, then the provisional rate stays)."""
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        fps = self.measured_fps()
        if fps is None or abs(fps - self.PROVISIONAL_FPS) < 0.01 * self.PROVISIONAL_FPS:
            self._partial.replace(self.path)
            return fps
        source = cv2.VideoCapture(str(self._partial))
        size = (int(source.get(cv2.CAP_PROP_FRAME_WIDTH)), int(source.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        final = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        ok, frame = source.read()
        while ok:
            final.write(frame)
            ok, frame = source.read()
        source.release()
        final.release()
        self._partial.unlink()
        return fps


class DemoViewer(Node):
    """Collects the node's outputs, prints one line per second, writes the files under ``out``."""

    def __init__(self, out: Path) -> None:
        super().__init__("ctxpose_demo_viewer", namespace=NAMESPACE)
        self.out = out
        self.results: list[Skeleton3DArray] = []
        self._recent: deque[Skeleton3DArray] = deque(maxlen=64)
        self._second: list[Skeleton3DArray] = []
        self._video = RateMatchedVideo(out / "demo_overlay.mp4")
        self._best = -1
        self._poses = open(out / "poses.jsonl", "w")  # noqa: SIM115 - open while the demo runs; close()
        self.create_subscription(Skeleton3DArray, "human/pose3d", self._on_skeletons, QoSProfile(depth=50))
        self.create_subscription(Image, "human/pose3d/image", self._on_overlay, QoSProfile(depth=5))
        self.create_timer(1.0, self._print_second)
        self.started = time.monotonic()

    def _on_skeletons(self, msg: Skeleton3DArray) -> None:
        self.results.append(msg)
        self._recent.append(msg)
        self._second.append(msg)
        self._poses.write(to_json(skeletons_record(msg)) + "\n")

    def _on_overlay(self, msg: Image) -> None:
        match = next((s for s in reversed(self._recent) if _key(s.header.stamp) == _key(msg.header.stamp)), None)
        if match is None:
            return
        overlay = decode_image(msg)
        frame = np.hstack([overlay, top_view(match, overlay.shape[0])])
        self._video.write(frame, _seconds(msg.header.stamp))
        confident = sum(s.score >= BEST_FRAME_MIN_SCORE for s in match.skeletons)
        if confident > self._best:
            self._best = confident
            cv2.imwrite(str(self.out / "best_frame.jpg"), frame)

    def _print_second(self) -> None:
        batch, self._second = self._second, []
        elapsed = time.monotonic() - self.started
        if not batch:
            print(f"[demo] {elapsed:5.0f} s  waiting for /human/pose3d ...", flush=True)
            return
        last = batch[-1]
        latency = statistics.mean(_seconds(m.processing_latency) for m in batch) * 1000.0
        roots = ", ".join(
            f"#{s.id} ({s.root_position.x:+.1f}, {s.root_position.y:+.1f}, {s.root_position.z:.1f}) m"
            for s in last.skeletons
        )
        print(
            f"[demo] {elapsed:5.0f} s  {len(batch)} fps  latency {latency:4.0f} ms  "
            f"people {len(last.skeletons)}: {roots}",
            flush=True,
        )

    def close(self) -> float | None:
        """Finish the files; returns the overlay video's frame rate (None: no video)."""
        self._poses.close()
        return self._video.close()


def _start(module: str, namespace: str, ros_args: list[str], log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", module, "--ros-args", "-r", f"__ns:={namespace}", *ros_args]
    with open(log, "w") as handle:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=os.environ.copy())


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def summary(results: list[Skeleton3DArray], seconds: float) -> str:
    counts = [len(r.skeletons) for r in results]
    latencies = sorted(_seconds(r.processing_latency) * 1000.0 for r in results)
    ids = sorted({s.id for r in results for s in r.skeletons})
    return (
        f"{len(results)} results in {seconds:.0f} s ({len(results) / max(seconds, 1e-9):.1f} per s); "
        f"latency median {statistics.median(latencies):.0f} ms, max {latencies[-1]:.0f} ms; "
        f"people per frame: max {max(counts)}, frames with 2+: {sum(c >= 2 for c in counts)}; "
        f"track ids seen: {len(ids)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of results to collect (default 60)")
    parser.add_argument("--frames", type=int, default=0, help="stop after this many results (0 = no limit)")
    parser.add_argument("--out", type=Path, default=Path("output/demo"), help="output folder (default output/demo)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--params-file", type=Path, default=None, help="pose3d_node parameters (default: config/pose3d.yaml)"
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=0.5,
        help="resize factor of the published footage (default 0.5: the detector sees 640 px "
        "either way, and a smaller camera leaves the CPU to the model)",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    params_file = args.params_file or default_params_file()
    # The node configures and activates itself (no launch file here to drive its lifecycle), and
    # its fixed input names are remapped onto the camera's, as the launch file does.
    node_proc = _start(
        "ros2_ctxpose.ros.node",
        NAMESPACE,
        [
            "--params-file",
            str(params_file),
            "-p",
            f"device:={args.device}",
            "-p",
            "autostart:=true",
            "-r",
            "image:=camera/image_raw",
            "-r",
            "camera_info:=camera/camera_info",
        ],
        args.out / "pose3d_node.log",
    )
    # Like a camera driver: image_raw and camera_info in the camera's namespace.
    camera_proc = _start(
        "ros2_ctxpose.ros.demo_publisher",
        f"{NAMESPACE}/camera",
        ["-p", f"scale:={args.scale}"],
        args.out / "demo_publisher.log",
    )
    rclpy.init()
    viewer = DemoViewer(args.out)
    first_result: float | None = None
    elapsed = 0.0
    status = 0
    video_fps: float | None = None
    try:
        print(f"[demo] pose3d_node and demo_publisher started (logs in {args.out}); loading the model ...", flush=True)
        while True:
            rclpy.spin_once(viewer, timeout_sec=0.1)
            now = time.monotonic()
            for name, proc in (("pose3d_node", node_proc), ("demo_publisher", camera_proc)):
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {args.out}/{name}.log")
            if first_result is None:
                if viewer.results:
                    first_result = now
                elif now - viewer.started > STARTUP_TIMEOUT_S:
                    raise RuntimeError(f"no results within {STARTUP_TIMEOUT_S:.0f} s; see {args.out}/pose3d_node.log")
            else:
                elapsed = now - first_result
                if elapsed >= args.duration or (args.frames and len(viewer.results) >= args.frames):
                    break
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        print(f"[demo] error: {exc}", file=sys.stderr)
        status = 1
    finally:
        _stop(camera_proc)
        _stop(node_proc)
        video_fps = viewer.close()
        viewer.destroy_node()
        rclpy.try_shutdown()
    if viewer.results:
        print(f"[demo] {summary(viewer.results, elapsed)}")
        print(
            f"[demo] wrote {args.out}/demo_overlay.mp4 (2D overlay | 3D top view"
            + (f", {video_fps:.1f} fps as the results came" if video_fps else "")
            + f"), {args.out}/best_frame.jpg, {args.out}/poses.jsonl"
        )
    elif status == 0:
        print("[demo] no results", file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
