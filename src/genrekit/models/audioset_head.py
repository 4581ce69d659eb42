"""A genre model on the AudioSet backbone alone: EfficientAT mn04 on 10 s windows -> one small head.

Why it exists (and is the default): the two-backbone model (:mod:`genrekit.models.default`)
spends three quarters of its time in musicnn's network, and the grouped cross-validation over
real-song sources finds that musicnn does not earn it: mn04's head with mn04's zero-shot genre
vote reads as well on the closed set and catches as much music outside the genres at the same
false-"other" rate (docs/model_card.md). One pass of a 0.98 M-parameter network per 10 s of
audio answers several hundred times faster than real time on two CPU cores.

What it computes, per track:

* the signal is read at 22.05 kHz (GTZAN's rate, so GTZAN clips and real songs reach mn04 with
  the same band), cut into windows of ``window_seconds`` every ``hop_seconds`` (while at least
  ``min_window_seconds`` is left; the last runs to the end), each window resampled
  to 32 kHz *on its own* (so block-wise reading of long files gives exactly the windows of a
  one-block read) and run through mn04: 527 logits + the 384-d embedding per window;
* track: the mean of the windows' rows -> a standardised multinomial logistic regression over
  the labels (+ "other"), then mn04's zero-shot vote among the labels (``heads.fusion.mix``,
  the mix the training CV computes); the in-set score is 1 - p(other), recalibrated so that the
  threshold chosen inside the CV folds reads 0.5;
* timeline: the same head on each window's row on its own (one segment per window; the head
  is fitted on single windows' rows, ``heads.training.fit_window_head``, so a segment is what it saw);
* tags: AudioSet's music classes (instruments, genres, moods); style words of an "other" answer:
  the most probable AudioSet genre class.

Model files of format ``genrekit-audioset-head`` are written by ``genrekit train --model head
--backbone mn04``; the default is one (``scripts/train_default_model.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genrekit.features import Features, FeatureSpec
from genrekit.heads.openset import recalibrate
from genrekit.models.base import GenreModel, register_loader

FORMAT = "genrekit-audioset-head"


@dataclass(frozen=True)
class AudioSetWindowSpec(FeatureSpec):
    """mn04's outputs [n, 911] on the windows of a signal at ``sample_rate`` (see the module doc).

    ``extract`` runs the network: for this model the backbone's outputs *are* the features the
    head and the block-wise reader work with (a few hundred floats per 10 s)."""

    kind = "audioset_windows"
    sample_rate: int = 22050
    window_seconds: float = 10.0
    hop_seconds: float = 10.0
    min_window_seconds: float = 2.0
    backbone: str = "efficientat_mn04"

    def check(self) -> None:
        """Raise ValueError for settings no signal can be cut by (a hand-edited file's)."""
        from genrekit.backbones.efficientat import NAME

        values = (self.sample_rate, self.window_seconds, self.hop_seconds, self.min_window_seconds)
        if not all(isinstance(v, (int, float)) and np.isfinite(v) for v in values):
            raise ValueError("feature_spec: sample_rate and window settings must be numbers")
        if self.sample_rate < 8000 or not 0 < self.hop_seconds <= self.window_seconds:
            raise ValueError(f"feature_spec: sample_rate {self.sample_rate} (>= 8000) and 0 < hop_seconds "
                             f"{self.hop_seconds} <= window_seconds {self.window_seconds} are needed")
        if not 0 < self.min_window_seconds <= self.window_seconds:
            raise ValueError(f"feature_spec: 0 < min_window_seconds {self.min_window_seconds} <= window_seconds needed")
        if self.backbone != NAME:
            raise ValueError(f"feature_spec: unknown AudioSet backbone {self.backbone!r} (known: {NAME})")

    @property
    def segment_hop_samples(self) -> int:
        return int(round(self.hop_seconds * self.sample_rate))

    @property
    def segment_samples(self) -> int:
        return int(round(self.window_seconds * self.sample_rate))

    @property
    def edge_margin_samples(self) -> int:
        """A block-wise reader keeps a window only when this much signal follows it, so the last
        window (which runs to the end: :meth:`windows`) is only ever cut from the last block."""
        return int(round(self.min_window_seconds * self.sample_rate))

    def windows(self, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        """(starts, ends) in samples of the windows of a signal of ``n_samples``: one every hop
        while at least ``min_window_seconds`` is left (always one), the last running to the end
        so that no tail goes unheard."""
        hop, short = self.segment_hop_samples, self.edge_margin_samples
        starts = np.arange(0, max(n_samples, 1), hop, dtype=np.int64)
        starts = starts[(n_samples - starts >= short) | (starts == 0)]
        ends = np.minimum(starts + self.segment_samples, n_samples)
        ends[-1] = n_samples
        return starts, ends

    def extract(self, y: np.ndarray, weights: str | None = None) -> Features:
        from genrekit.audio import resample
        from genrekit.backbones.efficientat import SR
        from genrekit.models import audioset as AS

        self.check()
        y = np.asarray(y, np.float32)
        starts, ends = self.windows(len(y))
        segs = [resample(y[a:b], self.sample_rate, SR) for a, b in zip(starts, ends, strict=True)]
        return Features(AS.run_windows(segs, weights), starts / self.sample_rate, ends / self.sample_rate)


def head_probs(head: dict[str, np.ndarray], rows: np.ndarray, labels: list[str], zero_shot_weight: float,
               feature: str = "all") -> np.ndarray:
    """[..., labels (+ other)] of mn04 rows [..., 911] (a track's mean row, or one window's): the
    logistic head, then mn04's zero-shot vote among the labels. The one formula the model file and
    the training CV (``heads.training``) compute."""
    from genrekit.heads import logistic as LR
    from genrekit.heads.fusion import zero_shot_vote
    from genrekit.models import audioset as AS

    q = LR.probs(head, AS.head_features(rows, feature))
    if not zero_shot_weight:
        return q
    return zero_shot_vote(q, len(labels), AS.zero_shot_logp(rows, labels), zero_shot_weight)


class AudioSetGenreModel(GenreModel):
    """mn04 window rows -> logistic head + zero-shot vote; see the module docstring.

    It follows the embedding route of ``prediction.Classifier`` (``taggram`` and the
    ``*_from_taggram`` calls): rows are collected block by block, then the track and timeline
    are computed once on all of them, as for the musicnn models."""

    format = FORMAT

    def __init__(self, head: dict[str, np.ndarray], labels: list[str], spec: AudioSetWindowSpec,
                 metrics: dict[str, Any] | None = None, info: dict[str, Any] | None = None,
                 head_labels: list[str] | None = None, feature: str = "all", zero_shot_weight: float = 0.0,
                 open_set: dict[str, Any] | None = None) -> None:
        super().__init__(labels, spec, metrics, info)
        self.head = head
        self.head_labels = list(head_labels) if head_labels else list(labels)
        if self.head_labels[: len(labels)] != list(labels):
            raise ValueError("the head's labels must start with the model's labels")
        self.has_other = len(self.head_labels) == len(labels) + 1
        if np.asarray(head["w1"]).shape[0] != len(self.head_labels):
            raise ValueError(f"the head gives {np.asarray(head['w1']).shape[0]} classes, "
                             f"'track_head_labels' names {len(self.head_labels)}")
        self.feature = feature
        self.zero_shot_weight = float(zero_shot_weight)
        if self.zero_shot_weight:
            from genrekit.models import audioset as AS

            AS.zero_shot_logp(np.zeros(AS.ROW), self.labels)  # every label must name an AudioSet class
        cfg = open_set or {}
        self.open_threshold = 0.5 if self.has_other and "fused_threshold" in cfg else None
        self._thresholds = {k: float(cfg.get(f"{k}_threshold", 0.5)) for k in ("fused", "segment")}
        self.audioset_weights: str | None = None  # a user's --efficientat-weights (None: the lookup's order)

    # -- rows --------------------------------------------------------------------------------------
    def features(self, y: np.ndarray) -> Features:
        return self.spec.extract(y, weights=self.audioset_weights)

    def taggram(self, values: np.ndarray) -> np.ndarray:
        """The per-window rows themselves [n, 911] (mn04's logits + embedding)."""
        return np.asarray(values, np.float32)

    patch_rows = taggram

    def _probs(self, mean_rows: np.ndarray) -> np.ndarray:
        return head_probs(self.head, mean_rows, self.labels, self.zero_shot_weight, self.feature)

    @staticmethod
    def _ran(rows: np.ndarray) -> np.ndarray:
        """Rows [n, 911] with a window that did not run (NaN: under 0.03 s of signal, the first
        window of a tiny input only) given the mean of those that did, so its segment says what
        the track says rather than what a row of zeros would; ValueError when none ran."""
        r = np.asarray(rows, np.float64)
        bad = np.isnan(r).any(axis=1)
        if bad.all():
            raise ValueError("the input is too short for the AudioSet backbone (no window ran)")
        if bad.any():
            r = r.copy()
            r[bad] = r[~bad].mean(0)
        return r

    @staticmethod
    def _mean(rows: np.ndarray) -> np.ndarray | None:
        from genrekit.models import audioset as AS

        return AS.track_features(rows) if len(rows) else None

    def _closed(self, p: np.ndarray) -> np.ndarray:
        c = np.asarray(p, np.float64)[..., : len(self.labels)]
        return (c / np.maximum(c.sum(-1, keepdims=True), 1e-12)).astype(np.float32)

    # -- GenreModel ----------------------------------------------------------------------------------
    def segment_probs_from_taggram(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        return self._closed(self._probs(self._ran(rows)))

    def track_probs_from_taggram(self, rows: np.ndarray) -> np.ndarray:
        mean = self._mean(rows)
        if mean is None:
            raise ValueError("no window of the input ran through the AudioSet backbone")
        return self._closed(self._probs(mean))

    def segment_probs(self, values: np.ndarray) -> np.ndarray:
        return self.segment_probs_from_taggram(self.taggram(values))

    def track_probs(self, values: np.ndarray) -> np.ndarray:
        return self.track_probs_from_taggram(self.taggram(values))

    def probe_outputs(self) -> int:
        """Columns of the track and segment probabilities on rows of zeros (``base.check_outputs``
        compares them with the labels); a head that gives no finite numbers is refused (its shape
        against the labels is checked when the model is made)."""
        from genrekit.models import audioset as AS

        rows = np.zeros((2, AS.ROW), np.float64)
        p = self._probs(rows.mean(0))  # every class, "other" included
        if not np.all(np.isfinite(p)):
            raise ValueError("the head gives no finite probabilities (NaN or infinite weights)")
        n_track = int(self._closed(p).shape[-1])
        if int(self.segment_probs_from_taggram(rows).shape[-1]) != n_track:
            raise ValueError("the track and segment outputs differ in width")
        return n_track

    # -- the open set --------------------------------------------------------------------------------
    def in_set_from_taggram(self, rows: np.ndarray) -> float | None:
        """1 - p(other) of the track, recalibrated so that the CV's threshold is 0.5 (None
        without "other")."""
        mean = self._mean(rows)
        if not self.has_other or mean is None:
            return None
        return float(recalibrate(1.0 - float(self._probs(mean)[-1]), self._thresholds["fused"]))

    def segment_in_set_from_taggram(self, rows: np.ndarray) -> np.ndarray | None:
        """[n] in-set score of each window (threshold chosen on held-out windows in the CV)."""
        if not self.has_other or len(rows) == 0:
            return None
        p = self._probs(self._ran(rows))
        return np.asarray(recalibrate(1.0 - p[:, -1], self._thresholds["segment"]), np.float32).reshape(-1)

    def style_from_taggram(self, rows: np.ndarray) -> str | None:
        """The most probable AudioSet genre class ("salsa music", "afrobeat")."""
        from genrekit.models import audioset as AS

        mean = self._mean(rows)
        return None if mean is None else AS.style(mean)

    # -- tags ------------------------------------------------------------------------------------------
    def audioset_tags(self, rows: np.ndarray) -> dict[str, float] | None:
        """{AudioSet music class: sigmoid of its mean logit}: instruments, genres, moods."""
        from genrekit.models import audioset as AS

        mean = self._mean(rows)
        if mean is None:
            return None
        names = AS.labels()
        return {names[i]: float(1 / (1 + np.exp(-mean[i]))) for i in AS.TAG_CLASSES}

    def tag_probs(self, values: np.ndarray, top_k: int | None = 10) -> dict[str, float] | None:
        tags = self.audioset_tags(self.taggram(values))
        if tags is None:
            return None
        return dict(sorted(tags.items(), key=lambda kv: -kv[1])[: top_k or None])


def model_from_file(tensors: dict[str, Any], meta: dict[str, Any], path: Path) -> AudioSetGenreModel:
    from genrekit.features import spec_from_dict
    from genrekit.models import audioset as AS

    t = {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v, dtype=np.float32) for k, v in tensors.items()}
    head = {k[len("audioset.m0."):]: v for k, v in t.items() if k.startswith("audioset.m0.")}
    for k in ("w1", "b1", "mu", "sigma"):
        if k not in head:
            raise KeyError(f"audioset.m0.{k}")
        if not np.all(np.isfinite(head[k])):
            raise ValueError(f"tensor audioset.m0.{k} holds NaN or infinite values")
    if not np.all(head["sigma"] > 0):
        raise ValueError("tensor audioset.m0.sigma must be positive (a feature's spread)")
    spec = spec_from_dict(meta["feature_spec"])
    if not isinstance(spec, AudioSetWindowSpec):
        raise ValueError(f"feature_spec kind {spec.kind!r} is not {AudioSetWindowSpec.kind!r}")
    spec.check()
    tables = {}
    for key in ("audioset", "open_set"):
        v = meta.get(key, {})
        if not isinstance(v, dict):
            raise ValueError(f"{key!r} must be a table of settings, not {type(v).__name__}")
        tables[key] = v
    cfg, open_set = tables["audioset"], tables["open_set"]
    labels = list(meta["labels"])
    head_labels = meta.get("track_head_labels") or labels
    if head_labels not in (labels, [*labels, "other"]):
        raise ValueError("'track_head_labels' must be 'labels', or 'labels' plus 'other'")
    gamma = cfg.get("zero_shot_weight", 0.0)
    if not isinstance(gamma, (int, float)) or not np.isfinite(gamma) or gamma < 0:
        raise ValueError(f"audioset.zero_shot_weight must be a number >= 0, not {gamma!r}")
    for k in ("fused_threshold", "segment_threshold"):
        v = open_set.get(k, 0.5)
        if not isinstance(v, (int, float)) or not 0 < v < 1:
            raise ValueError(f"open_set.{k} must lie between 0 and 1, not {v!r}")
    feature = str(cfg.get("feature", "all"))
    width = AS.head_features(np.zeros(AS.ROW), feature).shape[-1]
    if head["w1"].shape != (len(head_labels), width) or head["mu"].shape != (width,):
        raise ValueError(f"tensor audioset.m0.w1 is {list(head['w1'].shape)}; the labels and the "
                         f"{feature!r} features need {[len(head_labels), width]}")
    info = {k: meta[k] for k in ("name", "description", "backbone", "backbones", "training") if k in meta}
    return AudioSetGenreModel(head, labels, spec, meta.get("metrics"), info, head_labels=head_labels,
                              feature=feature, zero_shot_weight=float(gamma), open_set=open_set)


register_loader(FORMAT, model_from_file)
