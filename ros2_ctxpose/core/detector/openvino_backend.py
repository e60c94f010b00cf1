"""The OpenVINO backend: the same YOLO-pose network, converted from torch, run by OpenVINO on the CPU.

At first use the torch network (``yolo_pose``, the reference) is converted in memory with
``openvino.convert_model`` (no ONNX file), its input becomes what the detector hands it (a uint8
NHWC BGR batch, the letterbox buffer itself: the conversion to float, the channel swap and the
1/255 scale run inside the graph, so the frame is not copied again), and for ``int8`` it is
quantised with NNCF on calibration frames of the demo footage (never on evaluation frames). The
result is saved as an OpenVINO IR under ``cache_dir()/openvino/`` and reused by later processes,
while its files still match the sha256 stored beside them (else it is rebuilt, with a warning).

The cache key holds everything the saved model depends on: the weights' sha256, the IR's input
signature (dtype, layout, channel order and shape; the batch, height and width are dynamic, so
one IR serves every input size), the OpenVINO version, the precision of the saved weights, and for
``int8`` the calibration recipe with the sha256 of the calibration frames' source; any change
makes a new IR. The IR is compiled for each static input shape met (kept for the few most recent
shapes), which runs as fast as an IR converted at that shape; sizes that cycle through more
shapes than that run on one dynamic-shape compile instead of recompiling on every frame.

Precisions: ``fp32``; ``bf16`` (the fp32 IR compiled with OpenVINO's bf16 inference hint, only on
CPUs whose OpenVINO capabilities list BF16); ``int8`` (NNCF post-training quantisation; the
head's decoding and keypoint branch stay in float, run in bf16 where the CPU has it). ``auto`` is
the first of ``AUTO_ORDER`` the CPU can run: the fastest precision whose 3D MPJPE on the S11
frames stays within 1 mm of fp32 and with which the pipeline finds the same people
(benchmarks/README.md, "Precision").
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import torch

from ..config import DETECTOR_STRIDE, PipelineConfig
from .checkpoint import CheckpointError, cache_dir, load_checkpoint
from .letterbox import Letterbox
from .yolo_detector import YoloPoseDetector, default_weights_path

log = logging.getLogger(__name__)

OPENVINO_PIN: Final[str] = "openvino==2026.4.1"
NNCF_PIN: Final[str] = "nncf==3.4.0"
#: Precisions this backend runs.
PRECISIONS: Final[tuple[str, ...]] = ("fp32", "bf16", "int8")
#: What ``precision="auto"`` runs, fastest first; the first the CPU can run (for int8: that NNCF
#: can build or the cache already holds) is used. Measured (benchmarks/README.md, "Precision"):
#: int8 is the fastest, its S11 MPJPE is within 0.1 mm of fp32 and the pipeline finds the same
#: people on every annotated image; bf16 next; fp32 everywhere.
AUTO_ORDER: Final[tuple[str, ...]] = ("int8", "bf16", "fp32")
#: Bump when the IR's inputs, outputs or preprocessing change, so old IRs are not reused.
IR_FORMAT: Final[int] = 1
#: The IR's input: the letterbox buffer as the detector fills it.
INPUT_SIGNATURE: Final[str] = "u8 NHWC BGR [?,?,?,3]"
#: The files of a saved IR, hashed into its ``key.json``.
IR_FILES: Final[tuple[str, ...]] = ("model.xml", "model.bin")
#: Static input shapes compiled at once (a camera uses one; mixed image sizes a few).
MAX_COMPILED_SHAPES: Final[int] = 4
#: A shape met this many times in a row gets its own static compile even when that evicts another.
STATIC_AFTER: Final[int] = 8
#: INT8 calibration: every CALIBRATION_STEP-th frame of the demo footage, letterboxed at the
#: detector's imgsz. Frames of the evaluation sets are never used.
CALIBRATION_STEP: Final[int] = 1
CALIBRATION_VERSION: Final[int] = 1
#: How the INT8 model is made (part of its cache key). Kept in float: the head's decoding and its
#: keypoint branch (cv4): quantising that branch moved keypoints 5.8 px on average instead of 2.2
#: px on golden + S11 frames (benchmarks/README.md, "Precision").
INT8_RECIPE: Final[str] = "nncf-ptq mixed; float: head decoding, keypoint branch; v2"

#: OpenVINO's inference precision hint per precision; for int8 it applies to the layers left in
#: float (``INT8_RECIPE``): bf16 where the CPU has it (23 % faster than f32 there, same accuracy).
_INFERENCE_PRECISION = {"fp32": "f32", "bf16": "bf16", "int8": "bf16"}
_core_lock = threading.Lock()
_core: Any = None


class BackendUnavailable(RuntimeError):
    """A package the requested backend or precision needs is not installed (the message says which)."""


def _require_openvino() -> Any:
    if importlib.util.find_spec("openvino") is None:
        raise BackendUnavailable(
            f"the OpenVINO backend needs the openvino package: pip install {OPENVINO_PIN} (or use backend=torch)"
        )
    import openvino

    return openvino


def _require_nncf() -> Any:
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
            _core = _require_openvino().Core()
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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- calibration (int8)


def calibration_source() -> Path:
    """The footage INT8 calibration reads: Sports2D's demo.mp4 (not an evaluation set)."""
    from ..media import demo_video_path

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
def _stdout_to_stderr() -> Iterator[None]:
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


def _ir_hashes(folder: Path) -> dict[str, str]:
    """sha256 of the IR's files: a cached IR is used only while they match what was written (a
    damaged ``model.bin`` loads without complaint and moves keypoints by up to a hundred pixels)."""
    return {name: file_sha256(folder / name) for name in IR_FILES}


def _head_ignored_scope(nncf: Any, head_index: int) -> Any:
    """What stays in float (``INT8_RECIPE``): the head's decoding (anchors, DFL, strides, sigmoids:
    quantised, boxes and keypoints would move by stride steps) and its keypoint branch ``cv4``
    (quantised, keypoints moved 5.8 px on average, 2.2 px without it). The backbone, the neck and
    the box and class branches run in INT8."""
    head = rf"__module\.model\.{head_index}"
    return nncf.IgnoredScope(
        patterns=[rf"{head}/.*", rf"{head}\.dfl.*", rf"{head}\.cv4\..*"], types=["Sigmoid"], validate=False
    )


class OpenVINOPoseDetector(YoloPoseDetector):
    """YOLO11/YOLOv8-pose run by OpenVINO on the CPU (see the module docstring).

    Args:
        weights: Ultralytics pose checkpoint (``.pt``); ``None`` -> the default yolo11n-pose.
        precision: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"int8"``.
        threads: OpenVINO inference threads; 0 = OpenVINO's default (one per core).
        use_cache: keep the converted IR under ``cache_dir()/openvino`` (else convert in memory).
        Others: see ``YoloPoseDetector``.
    """

    backend = "openvino"

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        precision: str = "auto",
        imgsz: int = PipelineConfig.imgsz,
        person_threshold: float = PipelineConfig.person_threshold,
        nms_iou_threshold: float = PipelineConfig.nms_iou_threshold,
        max_det: int = 100,
        rect: bool = True,
        threads: int = 0,
        use_cache: bool = True,
        device: str = "cpu",
    ) -> None:
        super().__init__(
            imgsz=imgsz,
            person_threshold=person_threshold,
            nms_iou_threshold=nms_iou_threshold,
            max_det=max_det,
            rect=rect,
        )
        if str(device) not in ("cpu", "auto"):
            raise ValueError(f"the OpenVINO backend runs on the CPU, not {device!r}; use backend=torch for CUDA")
        self._ov = _require_openvino()
        self.device = torch.device("cpu")
        self.weights = Path(weights) if weights is not None else default_weights_path()
        if not self.weights.is_file():
            raise CheckpointError(f"checkpoint not found: {self.weights}")
        self.threads = threads
        self.use_cache = use_cache
        self.weights_sha256 = file_sha256(self.weights)
        self.precision = choose_precision(precision, cached_int8=precision == "auto" and self._int8_cached())
        self._ir_precision = "int8" if self.precision == "int8" else "fp32"
        self._model, meta = self._load_or_build()
        self.kpt_shape = tuple(meta["kpt_shape"])
        self.num_classes = int(meta["num_classes"])
        self.stride = int(meta["stride"])
        self._feature_channels = tuple(meta["feature_channels"])
        self._feature_strides = tuple(meta["feature_strides"])
        self._check_imgsz(self.stride)
        self._compiled: OrderedDict[tuple[int, ...], tuple[Any, list[tuple[int, ...]]]] = OrderedDict()
        self._dynamic: Any = None
        self._last_shape: tuple[int, ...] = ()
        self._streak = 0
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- properties

    @property
    def feature_channels(self) -> tuple[int, ...]:
        return self._feature_channels

    @property
    def feature_strides(self) -> tuple[int, ...]:
        return self._feature_strides

    @property
    def cache_path(self) -> Path:
        """Folder of the IR this detector runs (``model.xml``, ``model.bin``, ``key.json``); it
        exists only when ``use_cache`` and the cache was writable."""
        return self._folder

    # ----------------------------------------------------------------- the IR

    def _calibration(self) -> dict[str, Any] | None:
        return calibration_recipe(self.imgsz, DETECTOR_STRIDE) if self._ir_precision == "int8" else None

    def _key(self) -> dict[str, Any]:
        return cache_key(
            self.weights_sha256, self._ov.__version__, self._ir_precision, self._calibration(), INPUT_SIGNATURE
        )

    def _cache_path(self, key: dict[str, Any]) -> Path:
        return cache_dir() / "openvino" / f"{self.weights.stem}-{key['precision']}-{key_digest(key)}"

    def _int8_cached(self) -> bool:
        try:
            key = cache_key(
                self.weights_sha256,
                self._ov.__version__,
                "int8",
                calibration_recipe(self.imgsz, DETECTOR_STRIDE),
                INPUT_SIGNATURE,
            )
        except (FileNotFoundError, OSError):
            return False
        return self.use_cache and (self._cache_path(key) / "model.xml").is_file()

    def _load_or_build(self) -> tuple[Any, dict[str, Any]]:
        key = self._key()
        self._folder = folder = self._cache_path(key)
        if self.use_cache and (folder / "model.xml").is_file():
            try:
                stored = json.loads((folder / "key.json").read_text())
                if stored.get("key") != key:
                    log.warning("OpenVINO cache %s holds another key; rebuilding", folder)
                elif stored.get("files") != _ir_hashes(folder):
                    log.warning(
                        "OpenVINO cache %s does not match its stored sha256 (damaged or changed); rebuilding", folder
                    )
                else:
                    return openvino_core().read_model(str(folder / "model.xml")), stored["meta"]
            except (OSError, ValueError, KeyError, RuntimeError) as error:
                log.warning("OpenVINO cache %s unreadable (%s); rebuilding", folder, error)
        with _stdout_to_stderr():
            model, meta = self._build()
        if self.use_cache:
            self._save(model, key, meta, folder)
        return model, meta

    def _build(self) -> tuple[Any, dict[str, Any]]:
        """Convert the torch network (and quantise it for int8); returns the model and its metadata."""
        from .yolo_pose import build_pose_model

        ov = self._ov
        log.warning(
            "first use of %s with OpenVINO %s: converting it%s, once; kept in %s",
            self.weights.name,
            self._ir_precision,
            " and calibrating INT8 on the demo footage (about a minute)" if self._ir_precision == "int8" else "",
            cache_dir() / "openvino" if self.use_cache else "memory only",
        )
        ckpt = load_checkpoint(self.weights)
        try:
            net = build_pose_model(ckpt.yaml, ckpt.state_dict).fuse().eval()
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{self.weights}: cannot build a pose model from it: {e}") from e
        stride = max(net.head_strides)
        meta = {
            "kpt_shape": list(ckpt.kpt_shape),
            "num_classes": ckpt.num_classes,
            "stride": stride,
            "feature_channels": list(net.feature_channels),
            "feature_strides": list(net.feature_strides),
        }
        example = torch.zeros(1, 3, 2 * stride, 3 * stride)
        with torch.no_grad():
            model = ov.convert_model(net, example_input=example, input=[ov.PartialShape([-1, 3, -1, -1])])
        names = ["pred", *(f"features_s{s}" for s in net.feature_strides)]
        for output, name in zip(model.outputs, names, strict=True):
            output.get_tensor().set_names({name})
        model = self._with_preprocessing(model)
        if self._ir_precision == "int8":
            model = self._quantise(model, head_index=len(net.model) - 1)
        return model, meta

    def _with_preprocessing(self, model: Any) -> Any:
        """Input becomes the uint8 NHWC BGR letterbox buffer; cast, BGR->RGB and /255 run in the graph."""
        from openvino.preprocess import ColorFormat, PrePostProcessor

        ov = self._ov
        ppp = PrePostProcessor(model)
        inp = ppp.input(0)
        inp.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
        inp.model().set_layout(ov.Layout("NCHW"))
        inp.preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
        return ppp.build()

    def _quantise(self, model: Any, head_index: int) -> Any:
        nncf = _require_nncf()
        recipe = self._calibration()
        assert recipe is not None  # _quantise runs only for int8 IRs, which always have a recipe
        frames = list(calibration_frames(recipe))
        if not frames:
            raise RuntimeError("no calibration frames could be read")
        nncf.set_log_level(logging.ERROR)  # its per-layer INFO lines say nothing a user needs
        return nncf.quantize(
            model,
            nncf.Dataset(frames),
            preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(frames),
            ignored_scope=_head_ignored_scope(nncf, head_index),
        )

    def _save(self, model: Any, key: dict[str, Any], meta: dict[str, Any], folder: Path) -> None:
        """Write the IR atomically (a temporary folder renamed into place); a read-only cache is skipped."""
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
            self._ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
            document = {"key": key, "meta": meta, "files": _ir_hashes(tmp)}
            (tmp / "key.json").write_text(json.dumps(document, indent=1))
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
            tmp.rename(folder)
        except OSError as error:
            log.warning("cannot write the OpenVINO cache %s (%s); converting again next time", folder, error)
            shutil.rmtree(tmp, ignore_errors=True) if "tmp" in locals() else None

    # ----------------------------------------------------------------- inference

    def _compiled_for(self, shape: tuple[int, ...]) -> tuple[Any, list[tuple[int, ...]] | None]:
        """An infer request for input ``shape`` and its output shapes (``None``: the dynamic-shape
        model, whose outputs are sized per call).

        A static compile per shape runs fastest but costs a compile (0.5-2 s); once
        ``MAX_COMPILED_SHAPES`` are held, a new shape runs on the one dynamic-shape compile instead
        of evicting one (sizes cycling through more shapes than that recompiled on every frame),
        until it has come ``STATIC_AFTER`` times in a row (a camera that changed its resolution).
        """
        self._streak = self._streak + 1 if shape == self._last_shape else 1
        self._last_shape = shape
        entry = self._compiled.get(shape)
        if entry is not None:
            self._compiled.move_to_end(shape)
            return entry
        if len(self._compiled) >= MAX_COMPILED_SHAPES and self._streak < STATIC_AFTER:
            if self._dynamic is None:
                log.info("more than %d input shapes: new ones run on a dynamic-shape model", MAX_COMPILED_SHAPES)
                self._dynamic = self._compile(self._model).create_infer_request()
            return self._dynamic, None
        model = self._model.clone()
        model.reshape({model.inputs[0]: self._ov.PartialShape(list(shape))})
        compiled = self._compile(model)
        self._compiled[shape] = entry = (
            compiled.create_infer_request(),
            [tuple(o.get_shape()) for o in compiled.outputs],
        )
        while len(self._compiled) > MAX_COMPILED_SHAPES:
            self._compiled.popitem(last=False)
        return entry

    def _compile(self, model: Any) -> Any:
        hint = _INFERENCE_PRECISION[self.precision]
        if hint == "bf16" and not precision_supported("bf16"):
            hint = "f32"
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": hint}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = int(self.threads)
        return openvino_core().compile_model(model, "CPU", config)

    def _network(self, batch: np.ndarray, bgr: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if not bgr:  # the IR expects BGR; swap in place in the (detector-owned) letterbox buffer
            for image in batch:
                cv2.cvtColor(image, cv2.COLOR_RGB2BGR, dst=image)
        ov = self._ov
        with self._lock:
            request, out_shapes = self._compiled_for(batch.shape)
            request.set_input_tensor(ov.Tensor(np.ascontiguousarray(batch), shared_memory=True))
            if out_shapes is None:  # dynamic shapes: OpenVINO sizes the outputs, copied out below
                request.infer()
                outputs = [request.get_output_tensor(i).data.copy() for i in range(len(request.model_outputs))]
            else:
                # Fresh output arrays bound as the request's outputs: OpenVINO writes into them, and the
                # returned tensors stay valid after the next call (no copy of the feature maps).
                outputs = [np.empty(s, np.float32) for s in out_shapes]
                for i, out in enumerate(outputs):
                    request.set_output_tensor(i, ov.Tensor(out, shared_memory=True))
                request.infer()
        return torch.from_numpy(outputs[0]), [torch.from_numpy(o) for o in outputs[1:]]
