"""``ctxpose eval``'s "fused views" rows: records with ``R``, ``T`` and ``instant`` are views of one
instant; each instant is fused ("ray" and the "average" baseline) and scored in the world frame
(``core/fused_evaluation.py``) beside the single-view figures of the same people.

Records of one instant are grouped into views by ``file`` (one image = one camera) and into people
by ``person`` (the same person in every view; 0 when absent, i.e. one person per instant).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.annotations import AnnotatedImage
from ..core.fused_evaluation import MATCH_RADIUS_M, CameraView, PersonScore, Sighting, score_fused
from ..core.joint_sets import JointSetMapping

_KEYS = ("mpjpe_mm", "pa_mpjpe_mm", "root_error_mm")


@dataclass
class _Instant:
    mapping: JointSetMapping
    files: dict[str, int] = field(default_factory=dict)
    views: list[CameraView] = field(default_factory=list)
    people: dict[Any, list[Sighting]] = field(default_factory=lambda: defaultdict(list))


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _summary(instants: int, views: int, rejected: int, scores: list[PersonScore]) -> dict[str, Any]:
    """Means over the people both the fusion and at least one single view found."""
    both = [s for s in scores if s.fused is not None and s.single]
    out: dict[str, Any] = {
        "instants": instants,
        "views_per_instant": views / instants if instants else None,
        "rejected_instants": rejected,
        "people": len(scores),
        "matched": len(both),
        "missed": sum(s.fused is None for s in scores),
    }
    for key in _KEYS:
        out[key] = _mean([getattr(s.fused, key) for s in both])
        out[f"single_{key}"] = _mean([float(np.mean([getattr(e, key) for e in s.single])) for s in both])
    return out


class FusedViews:
    """Collects the views of each (dataset, instant) during the per-image loop, then fuses and scores."""

    def __init__(self) -> None:
        self._instants: dict[tuple[str, Any], _Instant] = {}

    def add(self, entry: AnnotatedImage, mapping: JointSetMapping, people: list, matched: int | None) -> None:
        """One scored record (``people``: all the pipeline found in its image, camera frame;
        ``matched``: the one matched to the annotation, None if none). Records without ``R``,
        ``T`` and ``instant`` are not views of an instant and are ignored."""
        if entry.R is None or entry.T is None or entry.instant is None or entry.truth is None:
            return
        instant = self._instants.setdefault((entry.dataset, entry.instant), _Instant(mapping))
        view = instant.files.setdefault(entry.file, len(instant.views))
        if view == len(instant.views):
            R = np.asarray(entry.R, dtype=np.float64).reshape(3, 3)
            instant.views.append((people, R, np.asarray(entry.T, dtype=np.float64).reshape(3)))
        person = entry.person if entry.person is not None else 0
        instant.people[person].append(Sighting(view, entry.truth.joints_3d, matched))

    def summaries(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Per dataset, per fusion method: the fused rows' figures (an instant whose views' truth
        disagrees is reported on stderr and counted as rejected)."""
        from ..core.fusion import METHODS

        by_dataset: dict[str, list[tuple[Any, _Instant]]] = defaultdict(list)
        for (dataset, key), instant in self._instants.items():
            by_dataset[dataset].append((key, instant))
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for dataset, instants in by_dataset.items():
            out[dataset] = {}
            for method in METHODS:
                scores: list[PersonScore] = []
                used = views = 0
                for key, instant in instants:
                    try:
                        scores += score_fused(instant.views, list(instant.people.values()), instant.mapping, method)
                    except ValueError as exc:
                        if method == METHODS[0]:
                            print(f"ctxpose eval: {dataset} instant {key}: {exc}; left out", file=sys.stderr)
                        continue
                    used, views = used + 1, views + len(instant.views)
                out[dataset][method] = _summary(used, views, len(instants) - used, scores)
        return out


def fmt_mm(v: float | None) -> str:
    """A figure of the tables (millimetres, one decimal; "-" when there is none)."""
    return "-" if v is None else f"{v:.1f}"


def print_rows(summaries: dict[str, dict[str, dict[str, Any]]]) -> None:
    """The "fused views" table: fused figures with the same people's single-view mean beside them."""
    header = (
        f"{'fused views':<24} {'method':>7} {'instants':>8} {'views':>5} {'people':>6} {'missed':>6} "
        f"{'MPJPE':>8} {'single':>8} {'PA-MPJPE':>9} {'single':>8} {'root err':>9} {'single':>8}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for dataset, methods in summaries.items():
        for method, s in methods.items():
            print(
                f"{dataset:<24} {method:>7} {s['instants']:>8} {fmt_mm(s['views_per_instant']):>5} {s['people']:>6} "
                f"{s['missed']:>6} {fmt_mm(s['mpjpe_mm']):>8} {fmt_mm(s['single_mpjpe_mm']):>8} "
                f"{fmt_mm(s['pa_mpjpe_mm']):>9} {fmt_mm(s['single_pa_mpjpe_mm']):>8} "
                f"{fmt_mm(s['root_error_mm']):>9} {fmt_mm(s['single_root_error_mm']):>8}"
            )
    print(
        f"(world frame; views = mean per instant; missed = annotated people with no fused root within "
        f"{MATCH_RADIUS_M} m; 'single' = the same people placed by each view alone, mean over views)"
    )
