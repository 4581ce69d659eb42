"""How the default model family combines its two heads and mn04's zero-shot vote.

Why a log-scale mix: each head is a calibrated-ish multinomial model over the same classes, and a
weighted sum of log-probabilities (a product of experts) lets a head that is sure outvote one that
is not, while a head that spreads its mass changes little. The zero-shot vote (mn04's AudioSet
classes named like the labels, :func:`genrekit.models.audioset.zero_shot_logp`) moves only the
choice among the labels: p(other), and so the in-set score, stays the heads'. Training
(``heads.training``) and prediction (``models.default``) both call :func:`mix`, so cross-validated
figures describe exactly what the model file computes.
"""

from __future__ import annotations

import numpy as np

from genrekit.heads.logistic import softmax


def mix(p_musicnn: np.ndarray, p_audioset: np.ndarray, alpha: float, n_labels: int,
        zero_shot_logp: np.ndarray | None = None, gamma: float = 0.0) -> np.ndarray:
    """[..., classes] probabilities: ``alpha`` log p_musicnn + (1 - alpha) log p_audioset,
    renormalised; then, with ``gamma``, the first ``n_labels`` classes re-weighted by ``gamma``
    times the zero-shot log-probabilities [..., n_labels], their total mass unchanged."""
    z = alpha * np.log(np.clip(p_musicnn, 1e-9, 1)) + (1 - alpha) * np.log(np.clip(p_audioset, 1e-9, 1))
    return zero_shot_vote(softmax(z), n_labels, zero_shot_logp, gamma)


def zero_shot_vote(p: np.ndarray, n_labels: int, zero_shot_logp: np.ndarray | None = None,
                   gamma: float = 0.0) -> np.ndarray:
    """[..., classes] ``p`` with its first ``n_labels`` classes re-weighted by ``gamma`` times the
    zero-shot log-probabilities [..., n_labels], their total mass unchanged (p(other) stays
    ``p``'s). :func:`mix` ends with it; a head on mn04 alone is ``p`` itself followed by it."""
    if not gamma or zero_shot_logp is None:
        return p
    closed = softmax(np.log(np.clip(p[..., :n_labels], 1e-12, 1)) + gamma * np.asarray(zero_shot_logp))
    rest = p[..., n_labels:]
    return np.concatenate([closed * (1.0 - rest.sum(-1, keepdims=True)), rest], axis=-1)
