"""One clear message when the synthetic engine's optional dependencies are missing.

The engine needs anny (the body model), pyrender with PyOpenGL, and an offscreen OpenGL: OSMesa on
a CPU-only machine (``PYOPENGL_PLATFORM=osmesa``, the default set here) or EGL on a GPU machine
(``PYOPENGL_PLATFORM=egl``). A missing piece otherwise surfaces as an ImportError deep inside
PyOpenGL, which says nothing about how to install it.
"""

from __future__ import annotations

import importlib
import os

INSTALL_HINT = (
    "install them with `bash scripts/setup_synth.sh` in a source checkout, or `pip install .[synth]` then "
    "`pip install --no-deps pyrender==0.1.45`, plus `apt-get install libosmesa6` for rendering on the CPU"
)


class SynthDependencyError(RuntimeError):
    """The optional synthetic-data dependencies are not installed."""


def set_default_gl_platform() -> str:
    """Select OSMesa unless the caller chose a platform (EGL on a GPU machine); must run before
    PyOpenGL is first imported, so every module that renders calls it at import time."""
    return os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")


def check_dependencies() -> None:
    """Raise :class:`SynthDependencyError` naming what is missing and how to install it."""
    platform = set_default_gl_platform()
    missing = []
    for module in ("anny", "pyrender", "trimesh", "scipy"):
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - PyOpenGL raises assorted errors when its GL is absent
            missing.append(f"{module} ({type(exc).__name__}: {exc})")
    if not missing:
        try:
            import pyrender

            pyrender.OffscreenRenderer(8, 8).delete()
        except Exception as exc:  # noqa: BLE001 - same: no offscreen GL for this platform
            missing.append(f"an offscreen OpenGL for PYOPENGL_PLATFORM={platform} ({type(exc).__name__}: {exc})")
    if missing:
        raise SynthDependencyError("the synthetic data engine needs " + "; ".join(missing) + ": " + INSTALL_HINT)
