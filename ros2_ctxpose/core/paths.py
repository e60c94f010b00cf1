"""Where data beside the project lives: the shared data folder (``../shared``).

One function so that the CLI, the benchmarks, the training wing and the tests agree on it.
"""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path:
    """``$CTXPOSE_SHARED`` when set, else ``shared`` beside the project root (``../shared`` of a
    source checkout; symlinked installs resolve to the checkout, so they find it too)."""
    env = os.environ.get("CTXPOSE_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared"
