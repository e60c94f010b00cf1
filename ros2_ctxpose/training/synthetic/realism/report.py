"""One render set against the real sets: the report's figures (JSON-ready) and its table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .classifier import auc_within, separability, unseen_sets
from .distributions import GROUPS, confidence_stats, error_stats, median_ratio
from .real import S11
from .renders import RenderSet
from .sample import PeopleSample

#: Issue #23's target: the renders' median keypoint error within this factor of real frames'.
TARGET_RATIO = 1.3


def render_report(renders: RenderSet, real: Sequence[PeopleSample], seed: int = 0, n_boot: int = 1000) -> dict:
    """Distributions of every set, the renders/real median-error ratios (fully visible renders,
    as the real people are) and the crop classifier's held-out scores."""
    sets = [renders.visible, renders.all, *real]
    reference = renders.visible.errors
    report: dict = {
        "stored_people": renders.stored,
        "sampled_people": len(renders.all),
        "engine_versions": list(renders.engine_versions),
        "sets": {
            s.name: {
                "kind": s.kind,
                "people": len(s),
                "missed": s.missed,
                "error": None if s.errors is None else error_stats(s.errors),
                "confidence": confidence_stats(s.confidences),
            }
            for s in sets
        },
        "ratio_vs": {
            s.name: median_ratio(reference, s.errors, n_boot, seed)
            for s in real
            if s.errors is not None and reference is not None and len(reference)
        },
        "target_ratio": TARGET_RATIO,
    }
    s11 = report["ratio_vs"].get(S11)
    report["target_met"] = None if s11 is None else bool(s11["ratio"] <= TARGET_RATIO)
    report["classifier"] = _classifier(renders.all, [s for s in real if s.kind == "real"], seed)
    return report


def _classifier(renders: PeopleSample, real: Sequence[PeopleSample], seed: int) -> dict:
    pool = [renders, *real]
    features = np.concatenate([s.features for s in pool])
    which = np.repeat(np.arange(len(pool)), [len(s) for s in pool])
    groups = np.concatenate([s.groups for s in pool])
    try:
        result = separability(features, which == 0, groups, seed)
    except ValueError as exc:  # too few people or groups: the rest of the report still stands
        return {"skipped": str(exc)}
    kept_which = which[result.pop("kept")]
    scores = result.pop("scores")
    result["auc_vs"] = {
        s.name: auc_within(kept_which == 0, scores, (kept_which == 0) | (kept_which == i))
        for i, s in enumerate(pool[1:], start=1)
    }
    unseen = unseen_sets(features, which - 1, groups, seed)
    result["auc_unseen"] = {real[i].name: auc for i, auc in unseen.items()}
    result["real_sets"] = [s.name for s in real]
    return result


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _conf(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _classifier_lines(k: dict) -> list[str]:
    if "skipped" in k:
        return [f"crop classifier skipped: {k['skipped']}"]
    per_set = ", ".join(f"{n} {a:.2f}" for n, a in k["auc_vs"].items() if a is not None)
    unseen = ", ".join(f"{n} {a:.2f}" for n, a in k["auc_unseen"].items() if a is not None)
    return [
        f"crop classifier, renders vs real ({', '.join(k['real_sets'])}): {k['people_per_class']} people per class, "
        f"{k['folds']}-fold grouped CV: held-out accuracy {k['accuracy']:.3f}, AUC {k['auc']:.3f} "
        f"(0.5 = indistinguishable); AUC vs {per_set}",
        f"  the same, each real set left out of training and tested on: AUC {unseen or '-'}",
    ]


def format_report(root: str, r: dict) -> str:
    """The report of one render set as a readable table."""
    head = f"{'set':32s} {'people':>6s} {'missed':>6s} {'err med %':>9s} {'p25':>5s} {'p75':>5s} {'p90':>5s}"
    head += f" {'conf med':>8s} {'conf<.5 %':>9s}  ratio renders/real [95 % CI]"
    lines = [
        f"== renders {root}: {r['sampled_people']} of {r['stored_people']} stored people sampled "
        f"(engine version {', '.join(map(str, r['engine_versions']))})",
        head,
    ]
    for name, s in r["sets"].items():
        e, c, ratio = s["error"] or {}, s["confidence"], r["ratio_vs"].get(name)
        cells = [_pct(e.get(k)) for k in ("median", "p25", "p75", "p90")]
        text = f"{ratio['ratio']:.2f} [{ratio['low']:.2f}, {ratio['high']:.2f}]" if ratio else ""
        lines.append(
            f"{name[:32]:32s} {s['people']:6d} {s['missed']:6d} {cells[0]:>9s} {cells[1]:>5s} {cells[2]:>5s} "
            f"{cells[3]:>5s} {c['median']:8.2f} {100 * c['share_below_half']:9.1f}  {text}"
        )
    for title, part in (
        ("median error % per joint group", "error"),
        ("median confidence per joint group", "confidence"),
    ):
        lines.append(f"{title:32s} " + " ".join(f"{g:>9s}" for g in GROUPS))
        for name, s in r["sets"].items():
            by_group = (s[part] or {}).get("median_by_group", {})
            cell = _pct if part == "error" else _conf
            lines.append(f"{name[:32]:32s} " + " ".join(f"{cell(by_group.get(g)):>9s}" for g in GROUPS))
    lines += _classifier_lines(r["classifier"])
    if r["target_met"] is not None:
        ratio = r["ratio_vs"][S11]["ratio"]
        verdict = "met" if r["target_met"] else "NOT met"
        lines.append(
            f"target (median error of fully visible renders <= {r['target_ratio']}x real S11): {ratio:.2f}x, {verdict}"
        )
    return "\n".join(lines)
