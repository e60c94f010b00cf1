"""What the installed OpenVINO and this CPU offer: the packages (with the pins to install), the
one ``openvino.Core`` of the process, and which precision ``auto`` or a named one resolves to.

Kept apart from the detector and its IR cache: a precision resolves (and a missing package is
named) without building a model.
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Any, Final

OPENVINO_PIN: Final[str] = "openvino==2026.4.1"
NNCF_PIN: Final[str] = "nncf==3.4.0"
#: Precisions this backend runs.
PRECISIONS: Final[tuple[str, ...]] = ("fp32", "bf16", "int8")
#: What ``precision="auto"`` runs, fastest first; the first the CPU can run (for int8: that NNCF
#: can build or the cache already holds) is used. Measured (benchmarks/README.md, "Precision"):
#: int8 is the fastest, its S11 MPJPE is within 0.1 mm of fp32 and the pipeline finds the same
#: people on every annotated image; bf16 next; fp32 everywhere.
AUTO_ORDER: Final[tuple[str, ...]] = ("int8", "bf16", "fp32")

_core_lock = threading.Lock()
_core: Any = None


class BackendUnavailable(RuntimeError):
    """A package the requested backend or precision needs is not installed (the message says which)."""


def require_openvino() -> Any:
    if importlib.util.find_spec("openvino") is None:
        raise BackendUnavailable(
            f"the OpenVINO backend needs the openvino package: pip install {OPENVINO_PIN} (or use backend=torch)"
        )
    import openvino

    return openvino


def require_nncf() -> Any:
    if importlib.util.find_spec("nncf") is None:
        raise BackendUnavailable(
            f"precision=int8 needs NNCF to quantise the model once: pip install {NNCF_PIN} (or use precision=fp32/bf16)"
        )
    import nncf

    return nncf


def openvino_core() -> Any:
    """One ``openvino.Core`` per process (it owns the CPU plugin and its thread pool)."""
    global _core
    with _core_lock:
        if _core is None:
            _core = require_openvino().Core()
        return _core


def cpu_capabilities() -> tuple[str, ...]:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of the CPU (e.g. FP32, BF16, INT8)."""
    return tuple(openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def precision_supported(precision: str) -> bool:
    """Whether this CPU runs ``precision`` natively (bf16 needs BF16 in OpenVINO's capabilities)."""
    if precision == "bf16":
        return "BF16" in cpu_capabilities()
    return precision in PRECISIONS


def choose_precision(precision: str, cached_int8: bool = False) -> str:
    """The precision ``precision`` ("auto" or a name) resolves to on this CPU; unsupported -> ValueError."""
    if precision == "auto":
        for candidate in AUTO_ORDER:
            if candidate == "int8" and not (cached_int8 or importlib.util.find_spec("nncf")):
                continue
            if precision_supported(candidate):
                return candidate
        return "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"the OpenVINO backend runs {', '.join(PRECISIONS)} (or auto), not {precision!r}")
    if not precision_supported(precision):
        raise ValueError(
            f"precision={precision}: this CPU has no native {precision} in OpenVINO "
            f"(capabilities {', '.join(cpu_capabilities())}); use fp32, int8 or auto"
        )
    return precision
