"""pose3d_node under a 30 Hz camera: output rate, latency, dropped frames, CPU and memory.

    source scripts/env.sh && python benchmarks/node_bench.py [--duration 60] [--rate 30]

Starts the demo publisher (Sports2D's demo footage as a camera) and pose3d_node as two processes
of this environment, waits until the node has published its first skeletons (model loading and
warm-up are excluded), then measures for ``--duration`` seconds:
- output rate: Skeleton3DArray messages received per second;
- camera-to-publish latency: receive time minus the message's header stamp (the source image's
  stamp, taken by the publisher), both from this host's system clock, p50/p95;
- dropped frames: the node's own counters on /diagnostics (frames replaced before the worker took
  them) over the window, against frames received;
- the node process's CPU (100 % = one core) and resident memory, from psutil (and the
  publisher's CPU, which shares the machine with it).
Prints a table and writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package first, whatever the overlay holds

from ros2_ctxpose.benchmarking.node import counter_deltas, spawn, stop_process, wait_for_first_result  # noqa: E402
from ros2_ctxpose.core.config import BACKENDS, PRECISIONS  # noqa: E402


def _ros_imports() -> Any:
    """rclpy and the messages, or a clear exit when the ROS environment is not sourced."""
    try:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray

        from ros2_ctxpose.msg import Skeleton3DArray
    except ImportError as error:
        sys.exit(f"node_bench: {error}; run `source scripts/env.sh` first (after scripts/bootstrap.sh)")
    return rclpy, DiagnosticArray, Skeleton3DArray


@dataclass
class Observations:
    """What the bench node saw; times are host system-clock seconds."""

    latencies_ms: list[float] = field(default_factory=list)
    receive_times: list[float] = field(default_factory=list)
    people: list[int] = field(default_factory=list)
    #: (receive time, {key: value}) of each of the node's diagnostic statuses.
    diagnostics: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)


def node_params(args: argparse.Namespace) -> list[str]:
    """pose3d_node's parameters: autostart (it is a lifecycle node and no manager runs here), the
    pipeline settings given here (same names), then --node-param."""
    return [
        "autostart:=true",
        f"backend:={args.backend}",
        f"precision:={args.precision}",
        f"device:={args.device}",
        f"imgsz:={args.imgsz}",
        *args.node_param,
    ]


#: The demo publisher runs in the camera's namespace (/camera/image_raw, /camera/camera_info) and the
#: node's relative inputs are remapped onto it, as launch/pose3d.launch.py does.
CAMERA_NS = "/camera"
PUBLISHER_REMAPS = [f"__ns:={CAMERA_NS}"]
NODE_REMAPS = [f"image:={CAMERA_NS}/image_raw", f"camera_info:={CAMERA_NS}/camera_info"]


def _command(module: str, params: list[str], remaps: list[str] = ()) -> list[str]:
    """``python -m module --ros-args -p ... -r ...``."""
    return [
        sys.executable,
        "-m",
        module,
        "--ros-args",
        *(a for p in params for a in ("-p", p)),
        *(a for r in remaps for a in ("-r", r)),
    ]


def measure(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    try:
        import psutil
    except ImportError:
        sys.exit("node_bench: needs psutil (pinned in tools/requirements-venv.txt; pip install psutil==7.2.2)")
    rclpy, DiagnosticArray, Skeleton3DArray = _ros_imports()
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    rclpy.init()
    bench = rclpy.create_node("node_bench")
    seen = Observations()

    def on_skeletons(msg: Any) -> None:
        now = time.time()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        seen.latencies_ms.append((now - stamp) * 1000.0)
        seen.receive_times.append(now)
        seen.people.append(len(msg.skeletons))

    def on_diagnostics(msg: Any) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if "frames_dropped" in values:
                seen.diagnostics.append((time.time(), values))

    bench.create_subscription(
        Skeleton3DArray, args.output_topic, on_skeletons, QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    )
    bench.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 50)

    node_log, publisher_log = log_dir / "pose3d_node.log", log_dir / "demo_publisher.log"
    node = spawn(_command("ros2_ctxpose.ros.node", node_params(args), NODE_REMAPS), node_log, ROOT)
    publisher = spawn(
        _command(
            "ros2_ctxpose.ros.demo_publisher", [f"rate_hz:={float(args.rate)}", *args.publisher_param], PUBLISHER_REMAPS
        ),
        publisher_log,
        ROOT,
    )
    try:
        node_proc, publisher_proc = psutil.Process(node.pid), psutil.Process(publisher.pid)
        wait_for_first_result(
            lambda: rclpy.spin_once(bench, timeout_sec=0.2),
            lambda: bool(seen.receive_times),
            {"pose3d_node": (node, node_log), "demo_publisher": (publisher, publisher_log)},
            args.startup_timeout,
            args.settle,
        )

        first = len(seen.receive_times)
        cpu_start, pub_cpu_start, start = node_proc.cpu_times(), publisher_proc.cpu_times(), time.time()
        next_sample = start
        end = start + args.duration
        while time.time() < end:
            rclpy.spin_once(bench, timeout_sec=0.05)
            if time.time() >= next_sample:
                seen.rss_mib.append(node_proc.memory_info().rss / 2**20)
                next_sample += 0.5
        cpu_end, pub_cpu_end, stop = node_proc.cpu_times(), publisher_proc.cpu_times(), time.time()
        if node.poll() is not None:
            raise RuntimeError(f"pose3d_node exited during the measurement; see {log_dir}/pose3d_node.log")
    finally:
        stop_process(publisher)
        stop_process(node)
        bench.destroy_node()
        rclpy.try_shutdown()

    from ros2_ctxpose.benchmarking import summarize

    in_window = [i for i in range(first, len(seen.receive_times)) if seen.receive_times[i] <= stop]
    elapsed = stop - start

    def cpu_percent(a, b):
        return 100.0 * ((b.user + b.system) - (a.user + a.system)) / elapsed

    counters = counter_deltas(seen.diagnostics, start, stop)
    return {
        "duration_s": elapsed,
        "rate_hz_requested": args.rate,
        "output_rate_hz": len(in_window) / elapsed,
        "latency": summarize(seen.latencies_ms[i] for i in in_window).as_dict() if in_window else None,
        "people_mean": sum(seen.people[i] for i in in_window) / len(in_window) if in_window else 0.0,
        "diagnostics": counters,
        "input_rate_hz": counters["frames_received"] / counters["span_s"] if counters else None,
        "dropped_fraction": (
            counters["frames_dropped"] / counters["frames_received"]
            if counters and counters["frames_received"]
            else None
        ),
        "node_cpu_percent": cpu_percent(cpu_start, cpu_end),
        "publisher_cpu_percent": cpu_percent(pub_cpu_start, pub_cpu_end),
        "cpu_cores": psutil.cpu_count(),
        "node_rss_mib": {"mean": sum(seen.rss_mib) / len(seen.rss_mib), "max": max(seen.rss_mib)},
        "node_params": node_params(args),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=60.0, help="measurement window, seconds")
    parser.add_argument("--rate", type=float, default=30.0, help="demo publisher frame rate, Hz")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="pose3d_node's backend parameter (auto: OpenVINO on a CPU where installed)",
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="pose3d_node's precision parameter (auto: the backend's default)",
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the first output before timing")
    parser.add_argument("--startup-timeout", type=float, default=180.0)
    parser.add_argument("--output-topic", default="/human/pose3d")
    parser.add_argument(
        "--node-param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="extra pose3d_node parameter (repeatable)",
    )
    parser.add_argument(
        "--publisher-param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="extra demo_publisher parameter (repeatable)",
    )
    parser.add_argument("--json", type=Path, default=ROOT / "output" / "node_bench.json")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.rate <= 0:
        parser.error("--duration and --rate must be positive")

    from ros2_ctxpose.benchmarking import format_table, write_json

    log_dir = args.json.parent
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        result = measure(args, log_dir)
    except RuntimeError as error:
        print(f"node_bench: {error}", file=sys.stderr)
        return 1
    latency = result["latency"] or {}
    counters = result["diagnostics"] or {}
    print(
        format_table(
            (
                "backend/precision",
                "imgsz",
                "camera Hz",
                "output Hz",
                "latency p50 ms",
                "p95 ms",
                "received",
                "dropped",
                "dropped %",
                "node CPU %",
                "RSS MiB (max)",
                "publisher CPU %",
                "people",
            ),
            [
                (
                    f"{args.backend}/{args.precision}",
                    args.imgsz,
                    args.rate,
                    result["output_rate_hz"],
                    latency.get("median_ms"),
                    latency.get("p95_ms"),
                    counters.get("frames_received"),
                    counters.get("frames_dropped"),
                    None if result["dropped_fraction"] is None else 100.0 * result["dropped_fraction"],
                    result["node_cpu_percent"],
                    result["node_rss_mib"]["max"],
                    result["publisher_cpu_percent"],
                    round(result["people_mean"], 2),
                )
            ],
        )
    )
    write_json(args.json, "node-bench", result)
    print(f"wrote {args.json}; node and publisher logs in {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
