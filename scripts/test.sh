#!/usr/bin/env bash
# The project's test command (README "Tests"; .ci/run calls exactly this):
#   bash scripts/test.sh [pytest arguments]        e.g. -m unit (the fast loop), -k dds
# Sets up whatever is missing (bootstrap and the rendering extras are idempotent), checks lint,
# formatting and the core's types, then runs the suite with the skip reasons listed. Exit status:
# the first failing step's; "no tests collected" counts as a failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/bootstrap.sh
# The synthetic data engine's optional dependencies (anny, pyrender, OSMesa), so its tests run too.
bash scripts/setup_synth.sh
# shellcheck disable=SC1091
source scripts/env.sh
# A domain of its own per run, so parallel runs on one machine do not hear each other's topics
# (0-101 are the ids valid for every participant count on Linux; 0 is everyone's default).
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( RANDOM % 101 + 1 ))}"
echo "[test] ROS_DOMAIN_ID=$ROS_DOMAIN_ID"

echo "[test] ruff check, ruff format --check, mypy (ros2_ctxpose/core)"
ruff check --quiet .
ruff format --check --quiet .
mypy

status=0
python -m pytest test -rs "$@" || status=$?
if [[ $status -eq 5 ]]; then
  echo "[test] pytest collected no tests: failing" >&2
fi
exit "$status"
