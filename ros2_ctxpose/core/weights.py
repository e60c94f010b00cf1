"""Reading and checking weight files, for the detector's cache and the lifter alike: plain data
only, intact, finite, as saved.

A weights file is a ``torch.save`` dict (the lifter's: ``{"config", "state_dict", "meta"}``; the
detector's converted-checkpoint cache: ``{"yaml", "state_dict", "sha256"}``). It is read with
``torch.load(weights_only=True)`` only, whoever wrote it (no pickled code ever runs), after cheap
checks that turn the usual accidents into one clear error naming the file: missing, empty, not a
torch zip (a text or random file), a damaged archive (zip CRCs, which ``torch.load`` does not
check). Then the content: every tensor finite, and, when the metadata carries ``content_sha256``
(``save_lifter`` always writes it), the digest of the config and the tensors recomputed and
compared, so a file changed after saving (a flipped bit in a tensor, an edited config value) is
refused instead of silently giving joints hundreds of metres off.

Nothing here knows a model, so neither ``core.detector`` nor ``core.lifter`` imports the other
for it: ``lifter.model.save_lifter`` / ``load_lifter`` and ``detector.checkpoint``'s cache build
on it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import torch

log = logging.getLogger(__name__)

#: Metadata key of the digest written by ``save_lifter`` and checked on load.
DIGEST_KEY: Final[str] = "content_sha256"


class WeightsError(ValueError):
    """A weights file that cannot be used; the message names the file and the reason."""


def content_sha256(config: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor]) -> str:
    """sha256 of a config dict and a state dict in a canonical form.

    The config as sorted-key JSON, then per tensor in name order: the name, dtype, shape and the
    raw bytes of its values (contiguous, on the CPU). Independent of the pickle layout, the zip
    member names and the device the tensors live on.
    """
    h = hashlib.sha256()
    h.update(json.dumps(config, sort_keys=True, separators=(",", ":"), default=repr).encode())
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().to("cpu").contiguous()
        h.update(f"\0{name}\0{str(tensor.dtype)}\0{tuple(tensor.shape)}\0".encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def non_finite(state_dict: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """Number of NaN/inf values per floating-point tensor that has any."""
    bad = {}
    for name, tensor in state_dict.items():
        if torch.is_tensor(tensor) and tensor.is_floating_point():
            count = int((~torch.isfinite(tensor)).sum())
            if count:
                bad[name] = count
    return bad


def read_weights_file(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu", what: str = "lifter weights"
) -> dict[str, Any]:
    """The dict in a ``torch.save`` file, read with ``weights_only=True`` after checking that the
    file is there, not empty, a torch zip archive and undamaged. Raises ``FileNotFoundError`` or
    ``WeightsError`` naming ``path``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    if not path.is_file():
        raise WeightsError(f"{what} {path}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise WeightsError(f"{what} {path}: empty file")
    if not zipfile.is_zipfile(path):
        raise WeightsError(
            f"{what} {path}: not a torch weights file (no zip archive inside: a text, truncated or foreign file?)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise WeightsError(f"{what} {path}: damaged archive ({exc})") from None
    if damaged is not None:
        raise WeightsError(f"{what} {path}: damaged file (checksum mismatch in {damaged})")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"{what} {path}: refused: it holds more than plain tensors and containers "
            f"(only weights_only=True loading is allowed; {first})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - zip/EOF/storage errors surface as many types inside torch.load
        raise WeightsError(f"{what} {path}: cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(blob, dict):
        raise WeightsError(f"{what} {path}: expected a dict, found {type(blob).__name__}")
    return blob


def check_content(
    config: Mapping[str, Any],
    state_dict: Mapping[str, Any],
    meta: Mapping[str, Any],
    source: str,
    what: str = "lifter weights",
) -> None:
    """Refuse non-tensor entries, non-finite values and a digest that does not match the content."""
    wrong = [k for k, v in state_dict.items() if not torch.is_tensor(v)]
    if wrong:
        raise WeightsError(f"{what} {source}: state_dict entries that are not tensors: {wrong[:5]}")
    bad = non_finite(state_dict)
    if bad:
        listed = ", ".join(f"{k} ({n})" for k, n in list(bad.items())[:5])
        raise WeightsError(f"{what} {source}: non-finite values (NaN or inf) in {len(bad)} tensor(s): {listed}")
    expected = meta.get(DIGEST_KEY)
    if expected is None:
        log.warning(
            "%s %s carry no %s: saved by an older save_lifter, their integrity cannot be "
            "checked (save them again with save_lifter)",
            what,
            source,
            DIGEST_KEY,
        )
        return
    actual = content_sha256(config, state_dict)
    if actual != expected:
        raise WeightsError(
            f"{what} {source}: content does not match the sha256 recorded when they were "
            f"saved ({actual[:16]}... != {str(expected)[:16]}...): the file was damaged or "
            "edited after saving"
        )
