"""Safe reader for Ultralytics ``.pt`` pose checkpoints, with a converted-weights cache.

An Ultralytics checkpoint is a torch zip file whose pickle rebuilds the training-time
``ultralytics.nn.tasks.PoseModel`` object. Loading it the usual way would import ultralytics
(which this package must not depend on) and would let the pickle call arbitrary code. Instead
the pickle is read by :class:`_RecordUnpickler`, whose ``find_class`` answers only from an
explicit allow-list: torch's tensor rebuild helpers, ``OrderedDict`` and a few builtins are
real; every ``ultralytics.*`` and ``torch.nn.*`` class becomes an inert :class:`ModuleRecord`
that only keeps the attributes the pickle gives it. Any other global is refused.

From the records we take the architecture (``model.yaml``: the layer list, depth/width
multiples, ``kpt_shape``, ``nc``) and a state dict assembled from the records' parameters and
buffers; weights that are not finite are refused. The pair is cached as a plain ``torch.save``
file keyed by the checkpoint's sha256, with the sha256 of its own content, so later loads go
through ``torch.load(weights_only=True)`` and never touch pickle code again, and a cache file
changed since it was written is rebuilt rather than used. This reader is the project's only
``torch.load`` without ``weights_only=True`` (test/test_weights_io.py enforces that).
"""

from __future__ import annotations

import _codecs
import hashlib
import importlib
import os
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..weights import content_sha256, non_finite

# numpy scalars (e.g. in training metrics) pickle through this data-only helper. import_module
# rather than two `from ... import` statements, which a type checker takes for a redefinition.
try:
    _numpy_scalar = importlib.import_module("numpy._core.multiarray").scalar  # numpy >= 2
except ImportError:  # pragma: no cover - numpy 1.x
    _numpy_scalar = importlib.import_module("numpy.core.multiarray").scalar

#: Bumped whenever the cached layout changes, so stale cache files are ignored.
_CACHE_VERSION = 2

#: Module prefixes whose classes are replaced by inert records (never imported).
_RECORD_MODULE_PREFIXES = ("ultralytics.", "torch.nn.modules.")

#: Real objects the pickle may reference: tensor reconstruction and plain containers.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch", "Size"): torch.Size,
    ("torch", "float16"): torch.float16,
    ("torch", "float32"): torch.float32,
    ("__builtin__", "set"): set,
    ("builtins", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "slice"): slice,
    ("builtins", "slice"): slice,
    ("_codecs", "encode"): _codecs.encode,  # bytes inside protocol-2 pickles
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}


class CheckpointError(RuntimeError):
    """A checkpoint could not be read or does not describe a supported pose model."""


class ModuleRecord:
    """Inert stand-in for a pickled ``nn.Module``: it only stores what the pickle sets.

    Subclasses are created per pickled class name (see :func:`_record_class`) so that
    ``type(record).__name__`` still says ``"C3k2"`` or ``"Conv2d"``.
    """

    qualname: str = "?"

    def __init__(self, *args: Any) -> None:
        self.init_args = args  # what a ``__reduce__`` passed to the real class; kept, never run

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"unexpected state for {self.qualname}: {type(state)}")
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"<record {self.qualname}>"


@dataclass(frozen=True)
class _MethodRecord:
    """What ``getattr(SomeClass, "forward")`` unpickles to: a name, never a callable."""

    owner: str
    name: str


_RECORD_CLASSES: dict[str, type[ModuleRecord]] = {}


def _record_class(module: str, name: str) -> type[ModuleRecord]:
    key = f"{module}.{name}"
    if key not in _RECORD_CLASSES:
        _RECORD_CLASSES[key] = type(name, (ModuleRecord,), {"qualname": key})
    return _RECORD_CLASSES[key]


def _safe_getattr(obj: Any, name: str) -> _MethodRecord:
    """``getattr`` restricted to record classes: Ultralytics pickles bound ``Detect.forward``."""
    if isinstance(obj, type) and issubclass(obj, ModuleRecord):
        return _MethodRecord(obj.qualname, name)
    raise pickle.UnpicklingError(f"refusing getattr({obj!r}, {name!r}) in checkpoint pickle")


class _RecordUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module in ("__builtin__", "builtins") and name == "getattr":
            return _safe_getattr
        if module.startswith(_RECORD_MODULE_PREFIXES):
            return _record_class(module, name)
        raise pickle.UnpicklingError(f"checkpoint references {module}.{name}, which is not on the allow-list")


class _RecordPickleModule:
    """The ``pickle_module`` handed to ``torch.load``: it only needs an ``Unpickler``."""

    Unpickler = _RecordUnpickler


@dataclass(frozen=True)
class PoseCheckpoint:
    """Everything needed to rebuild the network: the architecture dict and its weights."""

    yaml: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    source: str

    @property
    def kpt_shape(self) -> tuple[int, int]:
        k = self.yaml.get("kpt_shape", (17, 3))
        return int(k[0]), int(k[1])

    @property
    def num_classes(self) -> int:
        return int(self.yaml.get("nc", 1))


def _collect_state_dict(record: Any, prefix: str, out: dict[str, torch.Tensor]) -> None:
    """Walk ``_parameters``/``_buffers``/``_modules`` like ``nn.Module.state_dict`` does."""
    if not isinstance(record, ModuleRecord):
        raise CheckpointError(f"expected a module record at {prefix or 'model'}, got {type(record)}")
    skip = set(getattr(record, "_non_persistent_buffers_set", ()) or ())
    for table in ("_parameters", "_buffers"):
        for name, tensor in (getattr(record, table, None) or {}).items():
            if tensor is not None and name not in skip:
                out[prefix + name] = tensor.detach().float().clone()
    for name, child in (getattr(record, "_modules", None) or {}).items():
        if child is not None:
            _collect_state_dict(child, f"{prefix}{name}.", out)


def read_ultralytics_checkpoint(path: str | os.PathLike[str]) -> PoseCheckpoint:
    """Read an Ultralytics ``.pt`` without importing ultralytics or running pickled code.

    Prefers the EMA weights when present (what Ultralytics itself uses), else ``model``.
    Raises :class:`CheckpointError` naming the file for missing, corrupt, truncated or
    foreign files, and for pickles that reference anything outside the allow-list.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a torch zip checkpoint (corrupt, truncated or not a .pt file)")
    try:  # torch.load does not verify CRCs, so damaged tensor bytes would load silently
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{path}: corrupt checkpoint archive ({e})") from e
    if damaged is not None:
        raise CheckpointError(f"{path}: corrupt checkpoint (CRC mismatch in {damaged})")
    try:
        ckpt = torch.load(path, map_location="cpu", pickle_module=_RecordPickleModule, weights_only=False)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path}: refused or unreadable pickle: {e}") from e
    except Exception as e:  # zip/CRC/EOF errors surface as many types inside torch.load
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from e

    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: expected an Ultralytics checkpoint dict, got {type(ckpt)}")
    model = ckpt.get("ema") or ckpt.get("model")
    if not isinstance(model, ModuleRecord) or not isinstance(arch := getattr(model, "yaml", None), dict):
        raise CheckpointError(f"{path}: no Ultralytics model with a 'yaml' architecture inside")
    yaml = dict(arch)
    # The trained model's own attributes win over the yaml it was built from: fine-tuning
    # (e.g. the single-class "person" pose model) overrides ``nc`` without editing the yaml.
    for key in ("nc", "kpt_shape"):
        if getattr(model, key, None) is not None:
            yaml[key] = getattr(model, key)
    if "kpt_shape" not in yaml:
        raise CheckpointError(f"{path}: not a pose model (it has no 'kpt_shape')")
    state: dict[str, torch.Tensor] = {}
    _collect_state_dict(model, "", state)
    bad = non_finite(state)
    if bad:
        listed = ", ".join(f"{k} ({n})" for k, n in list(bad.items())[:5])
        raise CheckpointError(f"{path}: non-finite weights (NaN or inf) in {len(bad)} tensor(s): {listed}")
    return PoseCheckpoint(yaml=yaml, state_dict=state, source=str(path))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_dir() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/ros2_ctxpose``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ros2_ctxpose"


def load_checkpoint(path: str | os.PathLike[str], use_cache: bool = True) -> PoseCheckpoint:
    """Load a pose checkpoint, through the converted-weights cache when possible.

    The cache file holds only tensors, strings, numbers and lists, so it is read with
    ``weights_only=True``. A cache that cannot be read is rebuilt; a cache that cannot be
    written (read-only home) is skipped silently, since it only saves time.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not use_cache:
        return read_ultralytics_checkpoint(path)
    cached = cache_dir() / f"{path.stem}-{_sha256(path)[:16]}-v{_CACHE_VERSION}.pt"
    if cached.is_file():
        try:
            blob = torch.load(cached, map_location="cpu", weights_only=True)
            if blob["sha256"] != content_sha256(blob["yaml"], blob["state_dict"]) or non_finite(blob["state_dict"]):
                raise ValueError("cache content changed since it was written")
            return PoseCheckpoint(yaml=blob["yaml"], state_dict=blob["state_dict"], source=str(path))
        except Exception:  # noqa: BLE001 - a damaged cache is rebuilt from the checkpoint
            cached.unlink(missing_ok=True)
    ckpt = read_ultralytics_checkpoint(path)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        torch.save(
            {"yaml": ckpt.yaml, "state_dict": ckpt.state_dict, "sha256": content_sha256(ckpt.yaml, ckpt.state_dict)},
            tmp,
        )
        tmp.replace(cached)
    except OSError:
        pass
    return ckpt
