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

This module is the runtime detector (when to convert, compiles per input shape, inference);
``openvino_ir`` is the IR cache (key, hashes, calibration, rebuild steps, atomic save) and
``openvino_runtime`` what the installed OpenVINO and the CPU offer (precisions, ``Core``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import torch

from ..config import DETECTOR_STRIDE, PipelineConfig
from .checkpoint import CheckpointError, cache_dir, load_checkpoint
from .openvino_ir import (
    INPUT_SIGNATURE,
    cache_key,
    calibration_recipe,
    file_sha256,
    key_digest,
    quantise,
    read_cached_ir,
    save_ir,
    stdout_to_stderr,
    with_preprocessing,
)
from .openvino_runtime import choose_precision, openvino_core, precision_supported, require_openvino
from .yolo_detector import YoloPoseDetector, default_weights_path

log = logging.getLogger(__name__)

#: Static input shapes compiled at once (a camera uses one; mixed image sizes a few).
MAX_COMPILED_SHAPES: Final[int] = 4
#: A shape met this many times in a row gets its own static compile even when that evicts another.
STATIC_AFTER: Final[int] = 8
#: OpenVINO's inference precision hint per precision; for int8 it applies to the layers left in
#: float (``INT8_RECIPE``): bf16 where the CPU has it (23 % faster than f32 there, same accuracy).
_INFERENCE_PRECISION = {"fp32": "f32", "bf16": "bf16", "int8": "bf16"}


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
        self._ov = require_openvino()
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
        cached = read_cached_ir(folder, key) if self.use_cache else None
        if cached is not None:
            return cached
        with stdout_to_stderr():
            model, meta = self._build()
        if self.use_cache:
            save_ir(self._ov, model, key, meta, folder)
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
        model = with_preprocessing(ov, model)
        if self._ir_precision == "int8":
            recipe = self._calibration()
            assert recipe is not None  # int8 IRs always have a recipe
            model = quantise(model, len(net.model) - 1, recipe)
        return model, meta

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
