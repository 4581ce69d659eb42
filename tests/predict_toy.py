"""A tiny deterministic GenreModel for prediction tests that must not depend on the default model.

It scores each log-mel segment by fixed random projections of its per-band mean, so results depend
on the audio, are reproducible, and cost microseconds. LogMelSpec is used because its dB floor is
absolute, which makes blockwise prediction exactly equal to whole-signal prediction.
"""

from __future__ import annotations

import numpy as np

from genrekit.base import GenreModel
from genrekit.features import LogMelSpec

LABELS = ["blues", "classical", "jazz", "metal", "rock"]


class ToyModel(GenreModel):
    format = "toy"

    def __init__(self, spec: LogMelSpec | None = None, labels: list[str] | None = None) -> None:
        spec = spec or LogMelSpec(sample_rate=11025, n_fft=512, hop_length=256, n_mels=32,
                                  segment_seconds=2.0, hop_seconds=1.0)
        labels = labels or LABELS
        super().__init__(labels, spec, info={"name": "toy"})
        rng = np.random.default_rng(42)
        self.w = rng.standard_normal((spec.n_mels, len(labels))).astype(np.float64) / spec.n_mels

    def segment_probs(self, values: np.ndarray) -> np.ndarray:
        x = values.mean(axis=2).astype(np.float64)  # [n, n_mels]
        x = x - x.mean(axis=1, keepdims=True)
        z = x @ self.w
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def tag_probs(self, values: np.ndarray) -> dict[str, float]:
        m = float(np.clip(values.mean() / 100.0 + 0.5, 0, 1))
        return {"loud": m, "quiet": 1 - m}
