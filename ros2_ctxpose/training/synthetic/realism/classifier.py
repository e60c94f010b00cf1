"""Can a linear classifier tell rendered people from real ones by their feature crops?

A logistic regression on the pooled crops (``sample.pool_crops``), standardised, with balanced
classes (the larger class is subsampled, so chance is 0.5) and grouped, stratified k-fold
cross-validation: the people of one group (a rendered image, a block of a clip's frames, a
photograph) are held out together, so the score is not inflated by near-duplicate neighbours.
Held-out accuracy and AUC near 0.5 mean the crops are indistinguishable; near 1.0, separable.

A real set is one clip or one kind of photograph, so the grouped folds still train on the same
scene they test on; ``unseen_sets`` holds each real set out of training entirely, which asks the
harder question: does what separates renders from real carry over to real footage not seen?
"""

from __future__ import annotations

import numpy as np


def separability(
    features: np.ndarray, is_render: np.ndarray, groups: np.ndarray, seed: int = 0, folds: int = 5
) -> dict:
    """Out-of-fold accuracy and AUC of renders (``is_render``) vs real on ``features`` (N, F).

    Returns also ``kept`` (indices into the inputs of the balanced people) and ``scores`` (their
    held-out probability of being a render), so a caller can break the AUC down by real set.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    is_render = np.asarray(is_render, bool)
    kept = _balanced(is_render, np.random.default_rng(seed))
    n = len(kept) // 2
    y, g = is_render[kept].astype(int), np.asarray(groups)[kept]
    splits = min(folds, *(len(np.unique(g[y == label])) for label in (0, 1)))
    if splits < 2:
        raise ValueError(f"need at least 2 groups per class for cross-validation, have {splits}")
    cv = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
    scores = cross_val_predict(_model(), features[kept], y, groups=g, cv=cv, method="predict_proba")[:, 1]
    return {
        "people_per_class": int(n),
        "folds": int(splits),
        "accuracy": float(np.mean((scores >= 0.5) == y)),
        "auc": float(roc_auc_score(y, scores)),
        "kept": kept,
        "scores": scores,
    }


def _balanced(is_render: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of every person of the smaller class and as many drawn from the larger."""
    renders, real = np.flatnonzero(is_render), np.flatnonzero(~is_render)
    n = min(len(renders), len(real))
    return np.sort(np.concatenate([rng.permutation(renders)[:n], rng.permutation(real)[:n]]))


def _model():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def unseen_sets(
    features: np.ndarray, real_set: np.ndarray, render_groups: np.ndarray, seed: int = 0
) -> dict[int, float | None]:
    """Per real set (``real_set``: its index for real people, -1 for renders), the AUC on that
    set and a share of the render groups, the model trained on the other sets and renders only."""
    from sklearn.model_selection import PredefinedSplit, cross_val_predict

    rng = np.random.default_rng(seed)
    is_render = np.asarray(real_set) < 0
    kept = _balanced(is_render, rng)
    sets = np.unique(real_set[~is_render])
    if len(sets) < 2:
        return {}
    # Render groups are dealt to the folds at random, one fold per real set.
    groups = np.unique(render_groups[is_render])
    fold_of_group = dict(zip(rng.permutation(groups), np.arange(len(groups)) % len(sets), strict=True))
    fold = np.array(
        [
            fold_of_group[g] if r else int(np.searchsorted(sets, s))
            for r, s, g in zip(is_render, real_set, render_groups, strict=True)
        ]
    )[kept]
    y = is_render[kept].astype(int)
    scores = cross_val_predict(_model(), features[kept], y, cv=PredefinedSplit(fold), method="predict_proba")[:, 1]
    return {int(s): auc_within(is_render[kept], scores, fold == k) for k, s in enumerate(sets)}


def auc_within(is_render: np.ndarray, scores: np.ndarray, keep: np.ndarray) -> float | None:
    """AUC of held-out ``scores`` restricted to the people ``keep`` (renders and one real set);
    None when one class is absent there."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(is_render, int)[keep]
    return float(roc_auc_score(y, scores[keep])) if 0 < y.sum() < len(y) else None
