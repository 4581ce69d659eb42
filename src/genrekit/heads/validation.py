"""Grouped cross-validation, metrics and intervals for heads trained on few, clustered songs.

Songs of one source (a repository, an album, an artist) share production and labelling, so a
source is never on both sides of a fold: leave-one-group-out, and intervals from a bootstrap
that resamples whole groups, not songs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


def leave_one_group_out(groups: Sequence[str], always_in_fit: Sequence[bool] | None = None,
                        ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(group, fit indices, held-out indices) for each group; rows flagged ``always_in_fit``
    (e.g. GTZAN clips, which are never scored here) are in every fit and never held out."""
    g = np.asarray(groups)
    fixed = np.zeros(len(g), bool) if always_in_fit is None else np.asarray(always_in_fit, bool)
    for name in sorted(set(g[~fixed].tolist())):
        held = (g == name) & ~fixed
        yield name, np.flatnonzero(~held), np.flatnonzero(held)


def grouped_k_folds(groups: Sequence[str], k: int, always_in_fit: Sequence[bool] | None = None,
                    ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Like :func:`leave_one_group_out` with whole groups dealt into ``k`` folds (largest group
    first, each to the fold with the fewest rows so far): a cheaper protocol for comparing many
    candidates, never splitting a group."""
    g = np.asarray(groups)
    fixed = np.zeros(len(g), bool) if always_in_fit is None else np.asarray(always_in_fit, bool)
    names = sorted(set(g[~fixed].tolist()), key=lambda n: (-int(((g == n) & ~fixed).sum()), n))
    folds: list[list[str]] = [[] for _ in range(k)]
    sizes = [0] * k
    for n in names:
        i = int(np.argmin(sizes))
        folds[i].append(n)
        sizes[i] += int(((g == n) & ~fixed).sum())
    for i, members in enumerate(folds):
        held = np.isin(g, members) & ~fixed
        if held.any():
            yield f"fold{i}", np.flatnonzero(~held), np.flatnonzero(held)


def confusion(y: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), dtype=int)
    np.add.at(cm, (np.asarray(y, int), np.asarray(pred, int)), 1)
    return cm


def scores(y: np.ndarray, pred: np.ndarray, n: int) -> dict:
    """Accuracy, macro-F1 over the n true classes (a predicted class n, e.g. "other", counts as
    wrong for every true class), per-class F1 and the confusion matrix [n, n (+1)]."""
    y, pred = np.asarray(y, int), np.asarray(pred, int)
    width = max(n, int(pred.max()) + 1 if len(pred) else n)
    cm = confusion(y, pred, width)[:n]
    tp = np.diag(cm[:, :n]).astype(float)
    prec = tp / np.maximum(cm[:, :n].sum(0) + 0.0, 1)
    rec = tp / np.maximum(cm.sum(1), 1)
    f1 = np.where(prec + rec > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-12), 0.0)
    present = cm.sum(1) > 0
    return {"accuracy": float(tp.sum() / max(cm.sum(), 1)), "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
            "n": int(cm.sum()), "per_class_f1": [float(v) for v in f1], "confusion": cm.tolist()}


def bootstrap_interval(values: np.ndarray, groups: Sequence[str], n_boot: int = 2000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` (e.g. 1 for a right answer) when whole groups
    are resampled with replacement: the spread a new set of sources would show."""
    v = np.asarray(values, float)
    g = np.asarray(groups)
    names = sorted(set(g.tolist()))
    sums = np.array([v[g == k].sum() for k in names])
    counts = np.array([(g == k).sum() for k in names])
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(names), size=(n_boot, len(names)))
    means = sums[pick].sum(1) / np.maximum(counts[pick].sum(1), 1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random negative
    (ties count half)."""
    p = np.asarray(positive, float)[:, None]
    q = np.asarray(negative, float)[None, :]
    return float(((p > q).sum() + 0.5 * (p == q).sum()) / max(p.size * q.size, 1))


def calibration(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> dict[str, float]:
    """Log-loss and expected calibration error (top probability vs accuracy, equal-width bins)."""
    p = np.asarray(probs, float)
    p = p / p.sum(1, keepdims=True)
    y = np.asarray(y, int)
    top, pred = p.max(1), p.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (top > lo) & (top <= hi)
        if m.any():
            ece += abs(float((pred[m] == y[m]).mean()) - float(top[m].mean())) * float(m.mean())
    return {"log_loss": float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)))), "ece": float(ece)}
