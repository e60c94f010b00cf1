#!/usr/bin/env bash
# The main job (README, "Demo"): 3D poses of the two people in real footage, through ROS 2.
#   bash scripts/demo.sh [--duration 60] [--frames N] [--out output/demo] [--device auto|cpu|cuda]
# Sets up what is missing (bootstrap is idempotent; no ROS installation needed), then runs
# ros2_ctxpose.ros.demo_run: demo_publisher plays Sports2D's demo.mp4 as a camera and pose3d_node
# estimates 3D poses, as two processes over DDS. It prints one line per second (output rate,
# latency, people and their positions in metres) and writes output/demo/demo_overlay.mp4 (2D
# overlay | 3D top view), best_frame.jpg and poses.jsonl. Exit status 1 if no pose came out.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh
# shellcheck disable=SC1091
source scripts/env.sh
exec python -m ros2_ctxpose.ros.demo_run "$@"
