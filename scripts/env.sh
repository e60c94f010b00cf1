# shellcheck shell=bash
# Source me (bash): `source scripts/env.sh` after `bash scripts/bootstrap.sh`.
# Activates .venv, sources the colcon overlay (and, through it, the ROS 2 it was built against),
# and sets the ROS environment this project is developed and tested with. Variables you set
# yourself beforehand (a discovery range, a Fast DDS profile, ROS_HOME, ...) are kept.
# No `set -e` here: this runs inside your shell.

_ctxpose_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ ! -f "$_ctxpose_root/install/setup.bash" || ! -x "$_ctxpose_root/.venv/bin/python" ]]; then
  echo "scripts/env.sh: nothing built yet; run: bash $_ctxpose_root/scripts/bootstrap.sh" >&2
  unset _ctxpose_root _ctxpose_nounset
  return 1
fi

# colcon's setup scripts read unset variables: suspend `set -u` (e.g. scripts/test.sh's) meanwhile.
case $- in *u*) _ctxpose_nounset=1; set +u ;; *) _ctxpose_nounset=0 ;; esac
# shellcheck disable=SC1091
source "$_ctxpose_root/.venv/bin/activate"
# shellcheck disable=SC1091
source "$_ctxpose_root/install/setup.bash"
if [[ $_ctxpose_nounset == 1 ]]; then set -u; fi

# With the PyPI wheels, the venv itself is the underlay: its share/ament_index lists rclpy, the
# message packages and the RMW, for ros2 launch / launch_ros and ament_index lookups.
if [[ "$(cat "$_ctxpose_root/.venv/.bootstrap-mode" 2> /dev/null)" == wheels ]]; then
  case ":${AMENT_PREFIX_PATH:-}:" in
    *":$VIRTUAL_ENV:"*) ;;
    *) export AMENT_PREFIX_PATH="${AMENT_PREFIX_PATH:+$AMENT_PREFIX_PATH:}$VIRTUAL_ENV" ;;
  esac
fi

# Fast DDS is the RMW the wheels ship, and the one config/fastdds_profile.xml is written for.
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# Stay on this machine unless told otherwise (ROS_LOCALHOST_ONLY is ignored since Jazzy).
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
# Logs and other ROS state stay inside the repository (git-ignored .ros/).
export ROS_HOME="${ROS_HOME:-$_ctxpose_root/.ros}"
export ROS_LOG_DIR="${ROS_LOG_DIR:-$ROS_HOME/log}"
# A larger shared-memory segment, so that best-effort camera images (up to ~5 MB) get through.
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$_ctxpose_root/config/fastdds_profile.xml}"

unset _ctxpose_root _ctxpose_nounset
