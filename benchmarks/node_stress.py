"""pose3d_node overloaded and soaked: output rate, latency, drops, memory over time, CPU.

    source scripts/env.sh
    python benchmarks/node_stress.py                       # 1920x1080 bgr8 at 120 Hz for 60 s, 3 runs
    python benchmarks/node_stress.py --scenario baseline   # the same frames at 2 Hz: the unloaded figure
    python benchmarks/node_stress.py --scenario demo       # the demo camera (demo_publisher) at 30 Hz
    python benchmarks/node_stress.py --soak 600            # the demo camera for 10 minutes, one run
    python benchmarks/node_stress.py --publishers 2 --rate 60 --vs-baseline --runs 1
                                  # two cameras on one topic, each at 60 Hz, compared with an unloaded run

Scenarios (each starts a fresh pose3d_node per run, ``autostart:=true``, ``device:=cpu``):

- ``flood``: a publisher process of this script plays 1920x1080 bgr8 frames of the demo footage
  (upscaled, pre-built messages, fresh stamps) with a matching CameraInfo at ``--rate`` Hz
  (default 120), reliable keep-last 2 as camera drivers publish. The node can process a few
  frames per second on a small CPU, so this is a 15-40x overload.
- ``--publishers N``: N flood (or baseline) publisher processes on the same topic, each at
  ``--rate`` Hz (two processes publishing at once once made the node's memory grow).
- ``--vs-baseline``: first one ``baseline`` run (one publisher at 2 Hz), then the runs; the table
  gives each run's p50/p95 latency as a multiple of the baseline's (target: p95 <= 2x).
- ``baseline``: the same publisher and frames at ``--rate`` 2 Hz (below what the node keeps up
  with): the latency the flood's is compared with.
- ``demo``: ``demo_publisher`` (Sports2D's clip as a camera, 1768x994) at ``--rate`` Hz (30).
- ``--soak S``: the demo scenario for S seconds, one run; the RSS slope is taken after
  ``--warmup`` seconds (default 60 for a soak).

The script waits for the node's first skeletons (model loading excluded) plus ``--settle``
seconds, then measures for ``--duration`` seconds:

- output rate: Skeleton3DArray messages received per second;
- latency: each message's ``processing_latency`` (the node's clock at publication minus the
  image stamp: "camera stamp -> publish"), p50/p95/max; and receive time minus stamp (this host);
- the node's counters from /diagnostics over the window: frames received (taken off DDS),
  processed, dropped (replaced in the newest-frame slot), throttled (``max_input_rate_hz``),
  messages lost (DDS ``message_lost`` events), rejected, failed;
- node RSS sampled every second: first, last, max, and the slope of a least-squares line over
  the samples after ``--warmup`` seconds (MiB per minute);
- CPU (100 % = one core) of the node and the publisher, and of the whole machine, with the load
  average, so that a busy shared machine shows in the figures.

Prints a table (one row per run) and writes JSON (``--json``, default output/node_stress.json),
with the node's and publisher's logs beside it. Timed figures, not a test: on a shared machine
say so when quoting them. Compare another revision of the node with ``--node-script FILE``
(e.g. ``git show REV:ros2_ctxpose/ros/node.py > /tmp/node_rev.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

from ros2_ctxpose.benchmarking.node import spawn, stop_process, wait_for_first_result  # noqa: E402

NAMESPACE = "/node_stress"
#: Frames of demo.mp4 the flood publisher plays (both people in view from ~40 on).
FLOOD_FRAMES = range(40, 160, 10)
FLOOD_SIZE = (1920, 1080)
COUNTERS = (
    "frames_received",
    "frames_processed",
    "frames_dropped",
    "frames_throttled",
    "messages_lost",
    "messages_rejected",
    "processing_failures",
)


# --------------------------------------------------------------------------- flood publisher process
def run_flood_publisher(rate_hz: float, hfov_deg: float = 65.0) -> int:
    """``--role flood``: publish 1920x1080 bgr8 frames and CameraInfo at ``rate_hz`` until SIGINT."""
    import cv2
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    from ros2_ctxpose.core.media.videos import demo_video_path
    from ros2_ctxpose.ros.demo_publisher import camera_info_for
    from ros2_ctxpose.ros.image_codec import bgr8_message

    cap = cv2.VideoCapture(str(demo_video_path()))
    frames = []
    for index in range(max(FLOOD_FRAMES) + 1):
        ok, frame = cap.read()
        if not ok:
            break
        if index in FLOOD_FRAMES:
            frames.append(cv2.resize(frame, FLOOD_SIZE, interpolation=cv2.INTER_LINEAR))
    cap.release()
    if not frames:
        print("flood publisher: cannot read demo.mp4", file=sys.stderr)
        return 1
    rclpy.init()
    node = rclpy.create_node("flood_camera")
    qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
    image_pub = node.create_publisher(Image, "image_raw", qos)
    info_pub = node.create_publisher(CameraInfo, "camera_info", qos)
    messages = [bgr8_message(f, Header(frame_id="camera_optical_frame")) for f in frames]
    info = camera_info_for(FLOOD_SIZE[0], FLOOD_SIZE[1], hfov_deg, Header(frame_id="camera_optical_frame"))
    period = 1.0 / rate_hz
    published = 0
    started = next_tick = time.monotonic()
    print(
        f"flood publisher: {len(messages)} frames of {FLOOD_SIZE[0]}x{FLOOD_SIZE[1]} at {rate_hz:g} Hz on "
        f"{node.resolve_topic_name('image_raw')}",
        flush=True,
    )
    try:
        while rclpy.ok():
            now = time.monotonic()
            if now < next_tick:
                time.sleep(next_tick - now)
            # Behind schedule: publish now, but never in a burst to catch up.
            next_tick = max(next_tick + period, time.monotonic() - period)
            msg = messages[published % len(messages)]
            msg.header.stamp = info.header.stamp = node.get_clock().now().to_msg()
            try:
                info_pub.publish(info)
                image_pub.publish(msg)
            except Exception:  # noqa: BLE001 - the context went down under us (SIGINT)
                if rclpy.ok():
                    raise
                break
            published += 1
            if published % int(max(rate_hz, 1.0)) == 0:  # about once a second, for the achieved rate
                print(f"published {time.monotonic():.3f} {published}", flush=True)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        elapsed = time.monotonic() - started
        print(
            f"flood publisher: {published} frames in {elapsed:.1f} s ({published / max(elapsed, 1e-9):.1f} Hz)",
            flush=True,
        )
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


# --------------------------------------------------------------------------------- measurement
@dataclass
class Seen:
    """What the stress client saw; times are host monotonic seconds."""

    received_at: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)  # processing_latency of each message
    e2e_ms: list[float] = field(default_factory=list)  # receive (system clock) minus stamp
    people: list[int] = field(default_factory=list)
    diagnostics: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)  # (t, MiB)


def rss_slope_mib_per_min(samples: list[tuple[float, float]], after_s: float) -> float | None:
    """Least-squares slope of RSS over time (MiB/min), from the samples ``after_s`` seconds on."""
    if not samples:
        return None
    t0 = samples[0][0]
    kept = [(t - t0, m) for t, m in samples if t - t0 >= after_s]
    if len(kept) < 3:
        return None
    ts, ms = [t for t, _ in kept], [m for _, m in kept]
    t_mean, m_mean = statistics.fmean(ts), statistics.fmean(ms)
    var = sum((t - t_mean) ** 2 for t in ts)
    if var == 0:
        return None
    return 60.0 * sum((t - t_mean) * (m - m_mean) for t, m in kept) / var


def counter_deltas(diagnostics: list[tuple[float, dict[str, str]]], start: float, end: float) -> dict[str, Any]:
    """Change of the node's running totals between the first and last report inside [start, end]."""
    inside = [(t, v) for t, v in diagnostics if start <= t <= end and "frames_received" in v]
    if len(inside) < 2:
        return {}
    (t0, first), (t1, last) = inside[0], inside[-1]
    deltas: dict[str, Any] = {"span_s": t1 - t0}
    for key in COUNTERS:
        try:
            deltas[key] = int(float(last[key]) - float(first[key]))
        except (KeyError, ValueError):  # not reported ("n/a": the RMW does not report lost messages)
            deltas[key] = None
    return deltas


def mean_reported(diagnostics: list[tuple[float, dict[str, str]]], start: float, end: float, key: str) -> float | None:
    """Mean of a per-second value the node reports (e.g. its pipeline time) over [start, end]."""
    values = []
    for t, v in diagnostics:
        try:
            value = float(v[key])
        except (KeyError, ValueError):
            continue
        if start <= t <= end and value == value:  # not NaN (no frame in that second)
            values.append(value)
    return statistics.fmean(values) if values else None


def published_rate(logs: list[Path], start: float, end: float) -> float | None:
    """Frames per second the flood publishers achieved together in [start, end] (from their logs)."""
    total = 0.0
    for log in logs:
        marks = []
        for line in log.read_text().splitlines():
            if line.startswith("published "):
                _, t, count = line.split()
                if start <= float(t) <= end:
                    marks.append((float(t), int(count)))
        if len(marks) < 2:
            return None
        total += (marks[-1][1] - marks[0][1]) / (marks[-1][0] - marks[0][0])
    return total


def node_command(args: argparse.Namespace) -> list[str]:
    start = [sys.executable, args.node_script] if args.node_script else [sys.executable, "-m", "ros2_ctxpose.ros.node"]
    params = ["autostart:=true", f"device:={args.device}", *args.node_param]
    return [
        *start,
        "--ros-args",
        "--params-file",
        str(ROOT / "config" / "pose3d.yaml"),
        "-r",
        f"__ns:={NAMESPACE}",
        "-r",
        "image:=camera/image_raw",
        "-r",
        "camera_info:=camera/camera_info",
        *(a for p in params for a in ("-p", p)),
    ]


def publisher_command(args: argparse.Namespace, index: int = 1) -> list[str]:
    ros_args = ["--ros-args", "-r", f"__ns:={NAMESPACE}/camera", "-r", f"__node:=camera_{index}"]
    if args.scenario in ("flood", "baseline"):
        return [sys.executable, str(Path(__file__).resolve()), "--role", "flood", "--rate", str(args.rate), *ros_args]
    return [
        sys.executable,
        "-m",
        "ros2_ctxpose.ros.demo_publisher",
        *ros_args,
        "-p",
        f"rate_hz:={float(args.rate)}",
        "-p",
        f"scale:={args.scale}",
    ]


def measure(args: argparse.Namespace, log_dir: Path, run: int) -> dict[str, Any]:
    import psutil
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from ros2_ctxpose.msg import Skeleton3DArray

    rclpy.init()
    client = rclpy.create_node("node_stress_client", namespace=NAMESPACE)
    seen = Seen()

    def on_skeletons(msg: Any) -> None:
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        seen.received_at.append(time.monotonic())
        seen.e2e_ms.append((time.time() - stamp) * 1000.0)
        seen.latency_ms.append((msg.processing_latency.sec + msg.processing_latency.nanosec * 1e-9) * 1000.0)
        seen.people.append(len(msg.skeletons))

    def on_diagnostics(msg: Any) -> None:
        for status in msg.status:
            if status.name.startswith(f"{NAMESPACE}/pose3d_node"):
                seen.diagnostics.append((time.monotonic(), {kv.key: kv.value for kv in status.values}))

    client.create_subscription(
        Skeleton3DArray, "human/pose3d", on_skeletons, QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    )
    client.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 50)
    node_log = log_dir / f"pose3d_node_run{run}.log"
    publisher_logs = [log_dir / f"publisher{i}_run{run}.log" for i in range(1, args.publishers + 1)]
    node = spawn(node_command(args), node_log, ROOT)
    publishers = [spawn(publisher_command(args, i), log, ROOT) for i, log in enumerate(publisher_logs, 1)]
    try:
        node_ps, pub_ps = psutil.Process(node.pid), [psutil.Process(p.pid) for p in publishers]
        wait_for_first_result(
            lambda: rclpy.spin_once(client, timeout_sec=0.2),
            lambda: bool(seen.received_at),
            {
                "pose3d_node": (node, node_log),
                **{f"publisher {i}": (p, log) for i, (p, log) in enumerate(zip(publishers, publisher_logs), 1)},
            },
            args.startup_timeout,
            args.settle,
        )

        first = len(seen.received_at)
        psutil.cpu_percent(None)  # starts the machine-wide CPU window
        load_start = os.getloadavg()
        cpu0, pub_cpu0, start = node_ps.cpu_times(), [p.cpu_times() for p in pub_ps], time.monotonic()
        end, next_sample, report = start + args.duration, start, start + 60.0
        while time.monotonic() < end:
            rclpy.spin_once(client, timeout_sec=0.05)
            now = time.monotonic()
            if now >= next_sample:
                seen.rss.append((now, node_ps.memory_info().rss / 2**20))
                next_sample += 1.0
            if now >= report:  # a line a minute on long soaks
                recent = [i for i in range(first, len(seen.received_at)) if seen.received_at[i] > now - 60.0]
                lat = sorted(seen.latency_ms[i] for i in recent)
                print(
                    f"  [{now - start:4.0f} s] {len(recent) / 60.0:.1f} results/s, latency p50 "
                    f"{lat[len(lat) // 2] if lat else float('nan'):.0f} ms, RSS {seen.rss[-1][1]:.0f} MiB",
                    flush=True,
                )
                report += 60.0
        cpu1, pub_cpu1, stop = node_ps.cpu_times(), [p.cpu_times() for p in pub_ps], time.monotonic()
        machine_cpu = psutil.cpu_percent(None) * psutil.cpu_count()
        if node.poll() is not None:
            raise RuntimeError(f"pose3d_node exited during the measurement; see {log_dir}/pose3d_node_run{run}.log")
    finally:
        for publisher in publishers:
            stop_process(publisher)
        stop_process(node)
        client.destroy_node()
        rclpy.try_shutdown()

    elapsed = stop - start
    window = [i for i in range(first, len(seen.received_at)) if seen.received_at[i] <= stop]
    latency = sorted(seen.latency_ms[i] for i in window)
    e2e = sorted(seen.e2e_ms[i] for i in window)

    def pct(values: list[float], q: float) -> float | None:
        return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else None

    def cpu(a: Any, b: Any) -> float:
        return 100.0 * ((b.user + b.system) - (a.user + a.system)) / elapsed

    rss = [m for _, m in seen.rss]
    return {
        "run": run,
        "duration_s": elapsed,
        "output_rate_hz": len(window) / elapsed,
        "latency_ms": {"p50": pct(latency, 0.5), "p95": pct(latency, 0.95), "max": latency[-1] if latency else None},
        "receive_minus_stamp_ms": {"p50": pct(e2e, 0.5), "p95": pct(e2e, 0.95)},
        "people_mean": statistics.fmean(seen.people[i] for i in window) if window else 0.0,
        "counters": counter_deltas(seen.diagnostics, start, stop),
        "inference_mean_ms": mean_reported(seen.diagnostics, start, stop, "inference_mean_ms"),
        "rss_mib": {
            "first": rss[0],
            "last": rss[-1],
            "max": max(rss),
            "slope_mib_per_min": rss_slope_mib_per_min(seen.rss, args.warmup),
        }
        if rss
        else None,
        "node_cpu_percent": cpu(cpu0, cpu1),
        "publisher_cpu_percent": sum(cpu(a, b) for a, b in zip(pub_cpu0, pub_cpu1, strict=True)),
        "camera_rate_achieved_hz": published_rate(publisher_logs, start, stop)
        if args.scenario in ("flood", "baseline")
        else None,
        "machine_cpu_percent": machine_cpu,
        "loadavg_start": load_start[0],
        "loadavg_end": os.getloadavg()[0],
    }


def environment() -> dict[str, Any]:
    """Where the figures were measured."""
    import platform

    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else ""
    )
    return {
        "python": platform.python_version(),
        "processor": cpu,
        "cpu_count": len(os.sched_getaffinity(0)),
        "rmw": os.environ.get("RMW_IMPLEMENTATION", ""),
    }


def format_table(headers: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    """Plain-text table, right-aligned; floats with one decimal, None as '-'."""

    def cell(v: Any) -> str:
        return "-" if v is None else f"{v:.1f}" if isinstance(v, float) else str(v)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    return "\n".join(
        [
            "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)),
            "  ".join("-" * w for w in widths),
            *("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells),
        ]
    )


def write(
    args: argparse.Namespace, label: str, runs: list[dict[str, Any]], baseline: dict[str, Any] | None = None
) -> None:
    """The JSON document so far (rewritten after every run)."""
    args.json.write_text(
        json.dumps(
            {
                "kind": "node-stress",
                "environment": environment(),
                "scenario": label,
                "camera_rate_hz": args.rate,
                "publishers": args.publishers,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "node_command": node_command(args),
                "publisher_command": publisher_command(args),
                "runs": runs,
                "baseline": baseline,
            },
            indent=2,
        )
        + "\n"
    )


def _ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--scenario", choices=("flood", "baseline", "demo"), default="flood")
    parser.add_argument(
        "--soak",
        type=float,
        default=0.0,
        metavar="S",
        help="soak: the demo scenario for S seconds, one run (overrides --scenario/--duration)",
    )
    parser.add_argument(
        "--rate", type=float, default=None, help="camera rate, Hz (default: flood 120, baseline 2, demo 30)"
    )
    parser.add_argument("--duration", type=float, default=60.0, help="measurement window per run, seconds")
    parser.add_argument("--runs", type=int, default=None, help="runs (default 3; 1 for a soak)")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after the first result before timing")
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds of the window left out of the RSS slope (default 10; 60 for a soak)",
    )
    parser.add_argument(
        "--publishers", type=int, choices=(1, 2), default=1, help="flood publisher processes on the one topic"
    )
    parser.add_argument(
        "--vs-baseline", action="store_true", help="first a baseline run; latencies also as multiples of its"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="demo_publisher scale (demo scenario)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--node-param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="extra pose3d_node parameter (repeatable)",
    )
    parser.add_argument("--node-script", default=None, help="run this file as the node instead of the package's")
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path, default=ROOT / "output" / "node_stress.json")
    parser.add_argument("--role", choices=("bench", "flood"), default="bench", help=argparse.SUPPRESS)
    args, ros_args = parser.parse_known_args(argv)
    if args.role == "flood":
        return run_flood_publisher(args.rate or 120.0)
    if ros_args:
        parser.error(f"unrecognised arguments: {' '.join(ros_args)}")
    if args.soak:
        args.scenario, args.duration = "demo", args.soak
        args.runs = args.runs or 1
        args.warmup = 60.0 if args.warmup is None else args.warmup
    args.rate = args.rate or {"flood": 120.0, "baseline": 2.0, "demo": 30.0}[args.scenario]
    args.runs = args.runs or 3
    args.warmup = 10.0 if args.warmup is None else args.warmup
    try:
        import psutil  # noqa: F401
        import rclpy  # noqa: F401

        from ros2_ctxpose.msg import Skeleton3DArray  # noqa: F401
    except ImportError as error:
        sys.exit(f"node_stress: {error}; run `source scripts/env.sh` first (after scripts/bootstrap.sh)")
    log_dir = args.json.parent
    log_dir.mkdir(parents=True, exist_ok=True)
    label = "soak" if args.soak else args.scenario
    print(f"node_stress: {label}, camera {args.rate:g} Hz, {args.duration:g} s x {args.runs} run(s); logs in {log_dir}")
    baseline = None
    if args.vs_baseline:
        unloaded = argparse.Namespace(**{**vars(args), "scenario": "baseline", "rate": 2.0, "publishers": 1})
        try:
            baseline = measure(unloaded, log_dir, 0)
        except RuntimeError as error:
            print(f"node_stress: baseline run: {error}", file=sys.stderr)
            return 1
        print(
            f"  baseline (1 publisher, 2 Hz): latency p50 {baseline['latency_ms']['p50']:.0f} ms "
            f"p95 {baseline['latency_ms']['p95']:.0f} ms",
            flush=True,
        )
    runs = []
    for run in range(1, args.runs + 1):
        try:
            runs.append(measure(args, log_dir, run))
        except RuntimeError as error:
            print(f"node_stress: run {run}: {error}", file=sys.stderr)
            return 1
        r = runs[-1]
        write(args, label, runs, baseline)
        print(
            f"  run {run}: {r['output_rate_hz']:.1f} results/s, latency p50 {r['latency_ms']['p50']:.0f} ms "
            f"p95 {r['latency_ms']['p95']:.0f} ms",
            flush=True,
        )
    headers = (
        "run",
        "camera Hz",
        "sent Hz",
        "out /s",
        "infer ms",
        "lat p50",
        "lat p95",
        "lat max",
        "p50 x base",
        "p95 x base",
        "received",
        "processed",
        "dropped",
        "throttled",
        "lost",
        "RSS first",
        "RSS last",
        "MiB/min",
        "node CPU%",
        "pub CPU%",
        "machine CPU%",
        "load",
    )
    rows = []
    for r in runs:
        c, m = r["counters"], r["rss_mib"] or {}
        rows.append(
            (
                r["run"],
                args.rate,
                r["camera_rate_achieved_hz"],
                r["output_rate_hz"],
                r["inference_mean_ms"],
                r["latency_ms"]["p50"],
                r["latency_ms"]["p95"],
                r["latency_ms"]["max"],
                _ratio(r["latency_ms"]["p50"], baseline["latency_ms"]["p50"] if baseline else None),
                _ratio(r["latency_ms"]["p95"], baseline["latency_ms"]["p95"] if baseline else None),
                c.get("frames_received"),
                c.get("frames_processed"),
                c.get("frames_dropped"),
                c.get("frames_throttled"),
                c.get("messages_lost"),
                m.get("first"),
                m.get("last"),
                m.get("slope_mib_per_min"),
                r["node_cpu_percent"],
                r["publisher_cpu_percent"],
                r["machine_cpu_percent"],
                r["loadavg_end"],
            )
        )
    print(format_table(headers, rows))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
