"""Context-aware 3D lifter: COCO-17 2D keypoints (+ detector features) -> H36M-17 3D joints.

The public names are loaded on first use (PEP 562), so that importing a light submodule such
as ``options`` (for ``ctxpose --help``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ContextLifter", "LifterConfig", "load_lifter", "save_lifter"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("ros2_ctxpose.core.lifter.model"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
