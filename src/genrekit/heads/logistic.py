"""Standardised multinomial logistic regression: fitted with scikit-learn, run in numpy.

Why this head: with a few hundred labelled tracks, a linear model on standardised backbone outputs
is what grouped cross-validation keeps choosing (RBF SVCs, heavier weights and MLPs did not beat
it on real songs: docs/model_card.md). Its parameters are four arrays, stored in a model file as
plain tensors (``w1`` [classes, d], ``b1`` [classes], ``mu`` / ``sigma`` [d]): the layout
``models.default.TaggramHead`` members use, so either can read the other's.
"""

from __future__ import annotations

import numpy as np


def fit_logistic(X: np.ndarray, y: np.ndarray, *, C: float, n_classes: int,
                 sample_weight: np.ndarray | None = None, balanced: bool = False) -> dict[str, np.ndarray]:
    """Fit on rows X [n, d] with labels y in 0..n_classes-1; returns the numpy parameters.

    ``balanced``: weight each class by n / (n_classes * count), so that a large class does not
    set the decision for all (combined with ``sample_weight`` when both are given). Raises
    ValueError when a class has no row (its weights would be undefined).
    """
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.int64)
    counts = np.bincount(y, minlength=n_classes)
    if (counts == 0).any():
        raise ValueError(f"classes without a training row: {np.flatnonzero(counts == 0).tolist()}")
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    if balanced:
        per_class = np.bincount(y, weights=w, minlength=n_classes)
        w = w * (w.sum() / (n_classes * per_class))[y]
    mu, sd = X.mean(0), X.std(0) + 1e-6
    # one BLAS thread: these products are small ([hundreds, <= 911] @ [911, classes]), and
    # OpenBLAS's threads cost more to wake and join than they save (a 911-d fit took 0.2-0.4 s
    # on 2 threads, 0.02 s on one: the CV of `genrekit train --model head` runs dozens of them)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        clf = LogisticRegression(C=C, max_iter=5000).fit((X - mu) / sd, y, sample_weight=w)
    return {"w1": clf.coef_.astype(np.float32), "b1": clf.intercept_.astype(np.float32),
            "mu": mu.astype(np.float32), "sigma": sd.astype(np.float32)}


def logits(m: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Class logits [n, classes] (or [classes] for one row)."""
    z = (np.asarray(X, np.float64) - m["mu"]) / m["sigma"]
    return z @ np.asarray(m["w1"], np.float64).T + np.asarray(m["b1"], np.float64)


def softmax(h: np.ndarray) -> np.ndarray:
    h = np.asarray(h, np.float64)
    e = np.exp(h - h.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def probs(m: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Class probabilities [n, classes] (or [classes])."""
    return softmax(logits(m, X))
