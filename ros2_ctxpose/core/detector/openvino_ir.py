"""The OpenVINO IR cache: the key a converted model depends on, its folder, the sha256 of its
files, and the steps of a rebuild (preprocessing in the graph, INT8 calibration, atomic save).

``openvino_backend`` decides when to convert; this module says whether a saved IR may be reused
(its key and its files' hashes match) and how one is written. See ``openvino_backend``'s
docstring for what the key holds and why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np

from .letterbox import Letterbox
from .openvino_runtime import openvino_core, require_nncf

log = logging.getLogger(__name__)

#: Bump when the IR's inputs, outputs or preprocessing change, so old IRs are not reused.
IR_FORMAT: Final[int] = 1
#: The IR's input: the letterbox buffer as the detector fills it.
INPUT_SIGNATURE: Final[str] = "u8 NHWC BGR [?,?,?,3]"
#: The files of a saved IR, hashed into its ``key.json``.
IR_FILES: Final[tuple[str, ...]] = ("model.xml", "model.bin")
#: INT8 calibration: every CALIBRATION_STEP-th frame of the demo footage, letterboxed at the
#: detector's imgsz. Frames of the evaluation sets are never used.
CALIBRATION_STEP: Final[int] = 1
CALIBRATION_VERSION: Final[int] = 1
#: How the INT8 model is made (part of its cache key). Kept in float: the head's decoding and its
#: keypoint branch (cv4): quantising that branch moved keypoints 5.8 px on average instead of 2.2
#: px on golden + S11 frames (benchmarks/README.md, "Precision").
INT8_RECIPE: Final[str] = "nncf-ptq mixed; float: head decoding, keypoint branch; v2"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- calibration (int8)


def calibration_source() -> Path:
    """The footage INT8 calibration reads: Sports2D's demo.mp4 (not an evaluation set)."""
    from ..media.videos import demo_video_path

    return demo_video_path()


def calibration_recipe(imgsz: int, stride: int, source: Path | None = None) -> dict[str, Any]:
    """Everything that determines the calibration frames, hashed into the int8 cache key."""
    source = source or calibration_source()
    return {
        "version": CALIBRATION_VERSION,
        "source": source.name,
        "source_sha256": file_sha256(source),
        "step": CALIBRATION_STEP,
        "imgsz": imgsz,
        "stride": stride,
        "letterbox": "rect",
        "recipe": INT8_RECIPE,
    }


def calibration_frames(recipe: dict[str, Any], source: Path | None = None) -> Iterator[np.ndarray]:
    """The recipe's frames, letterboxed as the detector would: ``(1, H, W, 3)`` uint8 BGR each."""
    source = source or calibration_source()
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise RuntimeError(f"cannot open the calibration footage {source}")
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % recipe["step"] == 0:
                lb = Letterbox.fit(frame.shape[:2], recipe["imgsz"], recipe["stride"], rect=True)
                yield lb.apply(frame)[None]
            index += 1
    finally:
        capture.release()


# --------------------------------------------------------------------------- the cached IR


def cache_key(
    weights_sha256: str,
    openvino_version: str,
    ir_precision: str,
    calibration: dict[str, Any] | None,
    input_signature: str = INPUT_SIGNATURE,
) -> dict[str, Any]:
    """The fields an IR depends on; ``key_digest`` of it names the cache folder."""
    return {
        "format": IR_FORMAT,
        "weights_sha256": weights_sha256,
        "input": input_signature,
        "openvino": openvino_version,
        "precision": ir_precision,
        "calibration": calibration,
    }


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout meanwhile to stderr, from Python and from native code:
    conversion and NNCF's calibration progress bars must not land in ``ctxpose infer``'s JSON lines."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def ir_hashes(folder: Path) -> dict[str, str]:
    """sha256 of the IR's files: a cached IR is used only while they match what was written (a
    damaged ``model.bin`` loads without complaint and moves keypoints by up to a hundred pixels)."""
    return {name: file_sha256(folder / name) for name in IR_FILES}


def head_ignored_scope(nncf: Any, head_index: int) -> Any:
    """What stays in float (``INT8_RECIPE``): the head's decoding (anchors, DFL, strides, sigmoids:
    quantised, boxes and keypoints would move by stride steps) and its keypoint branch ``cv4``
    (quantised, keypoints moved 5.8 px on average, 2.2 px without it). The backbone, the neck and
    the box and class branches run in INT8."""
    head = rf"__module\.model\.{head_index}"
    return nncf.IgnoredScope(
        patterns=[rf"{head}/.*", rf"{head}\.dfl.*", rf"{head}\.cv4\..*"], types=["Sigmoid"], validate=False
    )


def read_cached_ir(folder: Path, key: dict[str, Any]) -> tuple[Any, dict[str, Any]] | None:
    """The IR saved in ``folder`` and its metadata, or None when there is none or it may not be
    reused (another key, files that no longer match their sha256, unreadable: said in a warning)."""
    if not (folder / "model.xml").is_file():
        return None
    try:
        stored = json.loads((folder / "key.json").read_text())
        if stored.get("key") != key:
            log.warning("OpenVINO cache %s holds another key; rebuilding", folder)
        elif stored.get("files") != ir_hashes(folder):
            log.warning("OpenVINO cache %s does not match its stored sha256 (damaged or changed); rebuilding", folder)
        else:
            return openvino_core().read_model(str(folder / "model.xml")), stored["meta"]
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        log.warning("OpenVINO cache %s unreadable (%s); rebuilding", folder, error)
    return None


def with_preprocessing(ov: Any, model: Any) -> Any:
    """Input becomes the uint8 NHWC BGR letterbox buffer; cast, BGR->RGB and /255 run in the graph."""
    from openvino.preprocess import ColorFormat, PrePostProcessor

    ppp = PrePostProcessor(model)
    inp = ppp.input(0)
    inp.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
    inp.model().set_layout(ov.Layout("NCHW"))
    inp.preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
    return ppp.build()


def quantise(model: Any, head_index: int, recipe: dict[str, Any]) -> Any:
    """The INT8 model (``INT8_RECIPE``), calibrated on ``recipe``'s frames."""
    nncf = require_nncf()
    frames = list(calibration_frames(recipe))
    if not frames:
        raise RuntimeError("no calibration frames could be read")
    nncf.set_log_level(logging.ERROR)  # its per-layer INFO lines say nothing a user needs
    return nncf.quantize(
        model,
        nncf.Dataset(frames),
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(frames),
        ignored_scope=head_ignored_scope(nncf, head_index),
    )


def save_ir(ov: Any, model: Any, key: dict[str, Any], meta: dict[str, Any], folder: Path) -> None:
    """Write the IR atomically (a temporary folder renamed into place); a read-only cache is skipped."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
        document = {"key": key, "meta": meta, "files": ir_hashes(tmp)}
        (tmp / "key.json").write_text(json.dumps(document, indent=1))
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    except OSError as error:
        log.warning("cannot write the OpenVINO cache %s (%s); converting again next time", folder, error)
        shutil.rmtree(tmp, ignore_errors=True) if "tmp" in locals() else None
