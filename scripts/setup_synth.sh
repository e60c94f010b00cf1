#!/usr/bin/env bash
# Install the synthetic data engine's optional dependencies (`ctxpose synth`, the lifter's rendered
# training people) into the project's .venv: anny (body model), pyrender + PyOpenGL, and Debian's
# OSMesa for rendering on the CPU. The node, the pip route and the demo never need any of it;
# scripts/test.sh runs this so that the engine's tests run in CI too. Idempotent (a stamp keyed
# by tools/requirements-synth.txt).
#
# Usage: bash scripts/setup_synth.sh        (after scripts/bootstrap.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQUIREMENTS="$ROOT/tools/requirements-synth.txt"
STAMP="$ROOT/build/.bootstrap/synth"
say() { printf '[setup_synth] %s\n' "$*"; }

[[ -x "$VENV/bin/python" ]] || { say "no .venv: run scripts/bootstrap.sh first" >&2; exit 1; }

if ! ldconfig -p 2> /dev/null | grep -q libOSMesa; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get > /dev/null; then
    say "installing Debian's libosmesa6 (offscreen OpenGL on the CPU)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q libosmesa6 > /dev/null 2>&1 \
        && ! { apt-get update -q > /dev/null 2>&1 \
               && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libosmesa6 > /dev/null 2>&1; }; then
      say "could not install libosmesa6 with apt-get; the rendering tests will skip until it is installed" >&2
    fi
  else
    say "OSMesa is missing and this is not a root shell with apt-get: install libosmesa6 (or use" \
        "PYOPENGL_PLATFORM=egl on a GPU machine); the rendering tests will skip until then" >&2
  fi
fi

key="$("$VENV/bin/python" -V) $(sha256sum "$REQUIREMENTS" | cut -c1-16)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$key" ]]; then
  exit 0
fi
say "installing the pinned rendering packages (tools/requirements-synth.txt) into .venv"
# pyrender pins PyOpenGL 3.1.0, whose OSMesa binding cannot make a context: it goes in without
# its pins, after everything it needs (listed, pinned, in the requirements file).
"$VENV/bin/python" -m pip --disable-pip-version-check -q install -r "$REQUIREMENTS" 2>&1 \
  | { grep -v -E "Location .* is ignored|^\s*$" || true; }
"$VENV/bin/python" -m pip --disable-pip-version-check -q install --no-deps pyrender==0.1.45 2>&1 \
  | { grep -v -E "Location .* is ignored|^\s*$" || true; }
mkdir -p "$(dirname "$STAMP")"
printf '%s' "$key" > "$STAMP"
