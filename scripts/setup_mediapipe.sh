#!/usr/bin/env bash
# Build .venv-mediapipe: the separate environment that runs the MediaPipe BlazePose peer for
# benchmarks/peer_mediapipe.py. It is separate because mediapipe 0.10.21 pins numpy<2 and
# protobuf<5, which the project's .venv (numpy 2, ROS wheels) cannot share.
#
# mediapipe is installed with --no-deps and the dependencies that `mp.solutions.pose` imports are
# listed here, pinned: its declared extras (jax, jaxlib, sounddevice, sentencepiece) serve only the
# genai/audio/text tasks, weigh hundreds of MB, and sounddevice needs the PortAudio system library.
# Nothing here pulls torch. The pose models (model_complexity 0/1) ship inside the wheel, so the
# peer never downloads at run time.
#
# Usage: scripts/setup_mediapipe.sh [PYTHON]   (PYTHON defaults to python3.11, then python3)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-mediapipe"
python="${1:-$(command -v python3.11 || command -v python3)}"

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet --no-deps mediapipe==0.10.21
"$venv/bin/python" -m pip install --quiet \
    "numpy==1.26.4" \
    "opencv-contrib-python-headless==4.11.0.86" \
    "protobuf==4.25.8" \
    "absl-py==2.1.0" \
    "attrs==25.3.0" \
    "flatbuffers==25.2.10" \
    "matplotlib==3.9.4"
"$venv/bin/python" -c "import mediapipe as mp; mp.solutions.pose.Pose; print('mediapipe', mp.__version__, 'ready in', '$venv')"
