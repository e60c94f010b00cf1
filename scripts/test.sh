#!/usr/bin/env bash
# The project's test command (README "Tests"; .ci/run calls exactly this):
#   bash scripts/test.sh [pytest arguments]
# Sets up whatever is missing (bootstrap is idempotent), then runs the whole suite with the skip
# reasons listed. Exit status: pytest's; "no tests collected" counts as a failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/bootstrap.sh
# shellcheck disable=SC1091
source scripts/env.sh
# A domain of its own per run, so parallel runs on one machine do not hear each other's topics
# (0-101 are the ids valid for every participant count on Linux; 0 is everyone's default).
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( RANDOM % 101 + 1 ))}"
echo "[test] ROS_DOMAIN_ID=$ROS_DOMAIN_ID"

status=0
python -m pytest test -rs "$@" || status=$?
if [[ $status -eq 5 ]]; then
  echo "[test] pytest collected no tests: failing" >&2
fi
exit "$status"
