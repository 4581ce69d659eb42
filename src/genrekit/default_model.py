"""The default genre model: pretrained musicnn (MSD) taggrams -> a small committed head.

Why this design: GTZAN has only 443 artist-filtered training tracks, far too few to train a CNN
that generalises; musicnn was trained on the Million Song Dataset and its 50 tag probabilities
already separate GTZAN's genres well (an SVM on their mean/std reaches ~80% on the filtered test
split). The head is a small ensemble of MLPs on window statistics of the taggram (mean, std and
mean logit over the patches of a window), trained with random sub-window augmentation so that it
answers both for whole tracks (all patches) and for short segments (a few patches, for timelines).

* backbone: :func:`genrekit.musicnn.load_backbone` (weights converted from the musicnn wheel at
  first use and cached; never committed);
* head: ``assets/default_head.safetensors`` (a genrekit model file of format
  ``genrekit-musicnn-head``: tensors + JSON metadata with spec, labels, metrics);
* ``segment_probs`` / ``track_probs`` take the spec's patches [n, 187, 96]; the ``*_from_taggram``
  variants take [n, 50] taggrams (what the training data holds); ``tag_probs`` gives the top
  zero-shot MSD tags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .base import GenreModel, register_loader
from .features import MusicnnSpec, spec_from_dict

FORMAT = "genrekit-musicnn-head"
HEAD_PATH = Path(__file__).parent / "assets" / "default_head.safetensors"
GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
_EPS = 1e-4


def window_features(taggram: np.ndarray, kind: str = "ms_lm") -> np.ndarray:
    """Statistics of a window of patch taggrams [n, 50] (or a batch [b, n, 50]) -> [.., D].

    ``ms``: mean and std of the probabilities; ``ms_lm``: plus the mean of their logits.
    """
    t = np.asarray(taggram, dtype=np.float64)
    parts = [t.mean(-2), t.std(-2)]
    if kind == "ms_lm":
        p = np.clip(t, _EPS, 1 - _EPS)
        parts.append(np.log(p / (1 - p)).mean(-2))
    return np.concatenate(parts, axis=-1).astype(np.float32)


class TaggramHead:
    """An ensemble on standardised window features; the members' probabilities are averaged.

    Member ``m{i}`` is one of: an MLP (``w1, b1, w2, b2``), a linear softmax (``w1, b1``), or an
    RBF-kernel logistic regression (``anchors, alpha, bias, gamma``: logits = K(z, anchors) alpha
    + bias with K = exp(-gamma |z - a|^2)). Plain numpy, so loading runs no code from the file.
    """

    def __init__(self, tensors: dict[str, np.ndarray], feature_kind: str):
        self.kind = feature_kind
        self.mu = tensors["mu"]
        self.sigma = tensors["sigma"]
        self.members: list[dict[str, np.ndarray]] = []
        i = 0
        while any(k.startswith(f"m{i}.") for k in tensors):
            self.members.append({k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(f"m{i}.")})
            i += 1

    @staticmethod
    def member_logits(m: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
        if "anchors" in m:
            a = m["anchors"]
            d2 = (z * z).sum(-1, keepdims=True) - 2 * z @ a.T + (a * a).sum(-1)
            return np.exp(-float(m["gamma"].reshape(-1)[0]) * np.maximum(d2, 0)) @ m["alpha"] + m["bias"]
        h = z @ m["w1"].T + m["b1"]
        if "w2" in m:
            h = np.maximum(h, 0) @ m["w2"].T + m["b2"]
        return h

    @staticmethod
    def _softmax(h: np.ndarray) -> np.ndarray:
        h = h - h.max(-1, keepdims=True)
        e = np.exp(h)
        return e / e.sum(-1, keepdims=True)

    def probs(self, taggram: np.ndarray) -> np.ndarray:
        """[n_labels] for one window [n, 50]. Members flagged ``per_patch`` classify every patch
        on its own (window of one) and average the patch probabilities; the others see the
        window's statistics."""
        taggram = np.asarray(taggram)
        out = 0.0
        z_win = None
        for m in self.members:
            if "per_patch" in m:
                f = window_features(taggram[:, None, :], self.kind)  # [n, D]
                out = out + self._softmax(self.member_logits(m, (f - self.mu) / self.sigma)).mean(0)
            else:
                if z_win is None:
                    z_win = (window_features(taggram, self.kind) - self.mu) / self.sigma
                out = out + self._softmax(self.member_logits(m, z_win))
        return np.asarray(out / len(self.members), dtype=np.float32)


def segment_windows(n: int, half: int) -> list[slice]:
    """For each patch, the window of up to ``2 * half + 1`` patches around it."""
    return [slice(max(0, i - half), min(n, i + half + 1)) for i in range(n)]


class MusicnnGenreModel(GenreModel):
    """musicnn MSD backbone + taggram head; see the module docstring."""

    format = FORMAT

    def __init__(self, head: TaggramHead, labels: list[str], spec: MusicnnSpec, metrics: dict[str, Any] | None = None,
                 info: dict[str, Any] | None = None, backbone: str = "MSD_musicnn", segment_half_window: int = 1,
                 weights: str | None = None, segment_head: TaggramHead | None = None) -> None:
        super().__init__(labels, spec, metrics, info)
        self.head = head
        self.segment_head = segment_head or head
        self.backbone_name = backbone
        self.segment_half_window = segment_half_window
        self.weights = weights
        self._last: tuple[np.ndarray, dict[str, np.ndarray]] | None = None

    # -- backbone -------------------------------------------------------------------------------
    def backbone_outputs(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """musicnn 'tags' [n, 50] and 'penultimate' [n, 200] of the patches (memoised for the
        last input, because prediction asks for segment, track and tag outputs of one track; the
        memo holds the array itself and compares identity, so a freed array's id cannot alias)."""
        if self._last is not None and self._last[0] is values:
            return self._last[1]
        from .musicnn import load_backbone, run_patches

        out = run_patches(load_backbone(self.backbone_name, self.weights), values)
        self._last = (values, out)
        return out

    def taggram(self, values: np.ndarray) -> np.ndarray:
        return self.backbone_outputs(values)["tags"]

    # -- GenreModel -----------------------------------------------------------------------------
    def segment_probs(self, values: np.ndarray) -> np.ndarray:
        return self.segment_probs_from_taggram(self.taggram(values))

    def track_probs(self, values: np.ndarray) -> np.ndarray:
        return self.track_probs_from_taggram(self.taggram(values))

    def tag_probs(self, values: np.ndarray, top_k: int | None = 10) -> dict[str, float]:
        """Zero-shot MSD tags of the track (mean over patches), best first."""
        from .musicnn import LABELS

        mean = self.taggram(values).mean(axis=0)
        order = np.argsort(-mean)[: top_k or None]
        names = LABELS[self.backbone_name]
        return {names[i]: float(mean[i]) for i in order}

    def tags(self, values: np.ndarray, top_k: int = 10) -> list[tuple[str, float]]:
        return list(self.tag_probs(values, top_k).items())

    # -- from stored taggrams (training data, evaluation) ----------------------------------------
    def segment_probs_from_taggram(self, taggram: np.ndarray) -> np.ndarray:
        n = len(taggram)
        if n == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        windows = segment_windows(n, self.segment_half_window)
        return np.stack([self.segment_head.probs(taggram[w]) for w in windows])

    def track_probs_from_taggram(self, taggram: np.ndarray) -> np.ndarray:
        return self.head.probs(taggram)


def model_from_file(tensors: dict[str, Any], meta: dict[str, Any], path: Path) -> MusicnnGenreModel:
    t = {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v, dtype=np.float32) for k, v in tensors.items()}
    kind = meta.get("feature_kind", "ms_lm")
    if any(k.startswith("track.") for k in t):
        head = TaggramHead({k[6:]: v for k, v in t.items() if k.startswith("track.")}, kind)
        seg_head = TaggramHead({k[8:]: v for k, v in t.items() if k.startswith("segment.")}, kind)
    else:  # a single head for both
        head = seg_head = TaggramHead(t, kind)
    spec = spec_from_dict(meta["feature_spec"])
    info = {k: meta[k] for k in ("name", "description", "backbone", "training") if k in meta}
    return MusicnnGenreModel(head, meta["labels"], spec, meta.get("metrics"), info, segment_head=seg_head,
                             backbone=meta.get("backbone", "MSD_musicnn"),
                             segment_half_window=int(meta.get("segment_half_window", 1)))


register_loader(FORMAT, model_from_file)

_DEFAULT: MusicnnGenreModel | None = None


def load_default_model() -> MusicnnGenreModel:
    """The committed default head (the backbone loads lazily at first prediction)."""
    global _DEFAULT
    if _DEFAULT is None:
        from .modelfile import read_model_file

        tensors, meta = read_model_file(HEAD_PATH)
        _DEFAULT = model_from_file(tensors, meta, HEAD_PATH)
    return _DEFAULT
