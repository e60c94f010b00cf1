"""Parameters, MACs and CPU latency of the lifter, called as the pipeline calls it.

MACs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2: the matrix
multiplications and attention, not the elementwise ops, not ``grid_sample``). Latency is the
median of repeated calls for a number of people: the geometry-only path as shipped (with flip
averaging, two rows per person, when the weights' ``flip_test`` is on), and the context path
including the per-person crops of YOLO11n-shaped feature maps of a 640x640 input
(``crop_people``, the step the pipeline adds when the weights use context).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from ros2_ctxpose.core.detector.features import crop_people
from ros2_ctxpose.core.detector.letterbox import Letterbox
from ros2_ctxpose.core.lifter.model import ContextLifter

#: YOLO11n-pose's feature maps for a 640x640 input (channels, height, width) at strides 4-32.
FEATURE_SHAPES = ((64, 160, 160), (128, 80, 80), (128, 40, 40), (256, 20, 20))
IMAGE_SIZE = 640


@dataclass(frozen=True)
class LifterCost:
    path: str  # "geometry-only" or "context"
    macs_per_person: int
    people: int
    median_ms: float


def lifter_call(model: ContextLifter, people: int, with_context: bool, seed: int = 0) -> Any:
    """A function that lifts ``people`` random people as the pipeline would (context: crops included)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(people, 1, 2, generator=g) * 400 + 120
    keypoints = centres + torch.randn(people, 17, 2, generator=g) * 40
    boxes = torch.cat([keypoints.amin(1) - 10, keypoints.amax(1) + 10], 1)
    kp_norm = (keypoints - IMAGE_SIZE / 2) / 500.0
    conf = torch.rand(people, 17, generator=g) * 0.5 + 0.5
    if not with_context:
        return lambda: model(kp_norm, conf)
    features = [torch.randn(1, *shape, generator=g) for shape in FEATURE_SHAPES]
    letterbox = Letterbox.fit((IMAGE_SIZE, IMAGE_SIZE), IMAGE_SIZE)
    cfg = model.config

    def call() -> torch.Tensor:
        crops = crop_people(features, letterbox, boxes, keypoints, cfg.context_crop_sizes, cfg.context_crop_margin)
        return model(kp_norm, conf, crops.crops, crops.joints_grid)

    return call


def count_macs(model: ContextLifter, with_context: bool) -> int:
    """MACs of lifting one person."""
    call = lifter_call(model, 1, with_context)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        call()
    return counter.get_total_flops() // 2


def median_latency_ms(model: ContextLifter, people: int, with_context: bool, repeats: int = 200) -> float:
    call = lifter_call(model, people, with_context)
    times = []
    warmup = min(20, repeats)
    with torch.inference_mode():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            call()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def lifter_costs(model: ContextLifter, people: int = 5, repeats: int = 200) -> list[LifterCost]:
    """The geometry-only path, and the context path where the weights have a trained one."""
    paths = (False, True) if model.config.context_trained else (False,)
    return [
        LifterCost(
            "context" if ctx else "geometry-only",
            count_macs(model, ctx),
            people,
            median_latency_ms(model, people, ctx, repeats),
        )
        for ctx in paths
    ]
