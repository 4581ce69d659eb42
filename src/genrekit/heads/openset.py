"""The "other" answer: music outside a model's genres.

An in-set score s in 0..1 (how likely a track is one of the genres) answers "other" below a
threshold. The threshold is chosen on songs whose answer is known, by one rule: catch as much of
the music outside the genres as possible while at most ``max_false`` of the songs inside are
called "other". Inside cross-validation it is chosen on the other folds only, so the reported
rates are those of a threshold that never saw the held-out source.
"""

from __future__ import annotations

import numpy as np


def pick_threshold(in_set_in: np.ndarray, in_set_out: np.ndarray, max_false: float) -> float:
    """The threshold t ("other" when s < t) that catches the most outside songs while at most
    ``max_false`` of the inside songs fall below it."""
    cands = np.unique(np.r_[np.asarray(in_set_in, float), np.asarray(in_set_out, float)])
    best_t, best_caught = 0.0, -1.0
    for t in cands:
        if (in_set_in < t).mean() <= max_false:
            caught = float((in_set_out < t).mean())
            if caught > best_caught:
                best_t, best_caught = float(t), caught
    return best_t


def recalibrate(score: float | np.ndarray, threshold: float) -> float | np.ndarray:
    """Map a score monotonically so that ``threshold`` lands on 0.5 (a shift on the logit
    scale): every in-set score a model reports then reads the same way, whichever head made it."""
    s = np.clip(np.asarray(score, np.float64), 1e-6, 1 - 1e-6)
    t = min(max(float(threshold), 1e-6), 1 - 1e-6)
    z = np.log(s / (1 - s)) - np.log(t / (1 - t))
    out = 1 / (1 + np.exp(-z))
    return float(out) if np.ndim(out) == 0 else out
