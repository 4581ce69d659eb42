"""The default genre model: pretrained musicnn (MSD) taggrams -> a small committed head.

Why this design: GTZAN has only 443 artist-filtered training tracks, far too few to train a CNN
that generalises; musicnn was trained on the Million Song Dataset and its 50 tag probabilities
already separate GTZAN's genres well (an SVM on their mean/std reaches ~80% on the filtered test
split). The *track head* is such an SVM: StandardScaler + RBF SVC (C=2, gamma='scale') on the
mean and std of the patch taggram plus the track's MFCC mean and log variance (the one other
per-track feature the training split has: GTZAN's ``features_30_sec.csv``; computed from the
audio at prediction by ``features.MusicnnMfccSpec``), chosen by grouped stratified
cross-validation on the train split and exported to plain numpy (libsvm one-vs-one decisions ->
sklearn's ovr decision values -> softmax with a per-input temperature fitted on out-of-fold
decisions). The *segment head* (timelines) is a small ensemble of a softmax regression and
per-patch MLPs on tag window statistics (mean, std, mean logit), trained on random 1-3 patch
windows. Inputs longer than the longest training track (29 patches) get the
track head's mean probability over 29-patch windows.

* backbone: :func:`genrekit.backbones.runners.backbone_runner` (ONNX Runtime, or torch when asked;
  weights converted from the musicnn wheel at first use and cached; never committed);
* head: ``assets/default_head.safetensors`` (a genrekit model file of format
  ``genrekit-musicnn-head``: tensors + JSON metadata with spec, labels, metrics);
* ``segment_probs`` / ``track_probs`` take the spec's values (patches [n, 187, 96], or [n, 188, 96]
  with the MFCC statistics row); the ``*_from_taggram`` variants take per-patch rows: [n, 50]
  taggrams, plus 41 MFCC columns for a head that reads them (``patch_rows``;
  ``datasets.attach_clip_mfcc`` for stored taggrams); ``tag_probs`` gives the top zero-shot MSD
  tags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from genrekit.features import Features, FeatureSpec, spec_from_dict
from genrekit.heads.openset import recalibrate as recalibrate  # the in-set scores' one mapping
from genrekit.models.base import GenreModel, register_loader

FORMAT = "genrekit-musicnn-head"
#: The two-backbone built-in (``--model musicnn``), a file of this format.
HEAD_PATH = Path(__file__).parent / "assets" / "musicnn_head.safetensors"
GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
_EPS = 1e-4


#: musicnn MSD tags per patch: the first columns of a patch row.
N_TAGS = 50
#: MFCC statistics that the ``ms_mfcc`` head reads (``features.MusicnnMfccSpec``): librosa's
#: default MFCCs (22.05 kHz, 20 coefficients) of each patch's 1 s slot as sufficient statistics
#: [frame count, sum of each coefficient, sum of its squares], columns N_TAGS.. of a patch row.
N_MFCC = 20
#: The in-set model's MTT features need at least this many patches the second backbone ran on.
MIN_INSET_PATCHES = 2

#: MSD tags that name a style of music (not a decade, a voice, a mood or an instrument): the
#: words ``style_from_taggram`` may use to describe music outside the model's genres.
STYLE_TAGS = frozenset({
    "rock", "pop", "alternative", "indie", "electronic", "dance", "alternative rock", "jazz", "metal",
    "chillout", "classic rock", "soul", "indie rock", "electronica", "folk", "punk", "blues", "hard rock",
    "ambient", "acoustic", "experimental", "Hip-Hop", "country", "easy listening", "funk", "electro",
    "heavy metal", "Progressive rock", "rnb", "indie pop", "House", "oldies",
})

#: Slot statistics per patch for the default spec's 20 MFCCs; other ``n_mfcc`` values give
#: ``MusicnnMfccSpec.stat_columns`` columns, and ``window_features`` reads the count off the rows.
MFCC_STAT_COLUMNS = 1 + 2 * N_MFCC


def window_features(taggram: np.ndarray, kind: str = "ms_lm") -> np.ndarray:
    """Statistics of a window of patch rows [n, 50 (+41)] (or a batch [b, n, ..]) -> [.., D].

    ``ms``: mean and std of the tag probabilities; ``ms_lm``: plus the mean of their logits;
    ``ms_mfcc``: ``ms`` plus the mean and log variance of the MFCCs over the window's frames
    (from the per-patch sufficient statistics in columns 50..90, so any window of patches gives
    the statistics of exactly its frames: a whole GTZAN clip gives the clip's, as in the
    ``features_30_sec.csv`` table the head is trained on).
    """
    t = np.asarray(taggram, dtype=np.float64)
    tags = t[..., :N_TAGS]
    parts = [tags.mean(-2), tags.std(-2)]
    if kind == "ms_lm":
        p = np.clip(tags, _EPS, 1 - _EPS)
        parts.append(np.log(p / (1 - p)).mean(-2))
    elif kind == "ms_mfcc":
        extra = t.shape[-1] - N_TAGS  # [count, n_mfcc sums, n_mfcc sums of squares]
        if extra < 3 or extra % 2 == 0:
            raise ValueError(f"the ms_mfcc head needs MFCC statistics: patch rows of {N_TAGS} tags + 1 + 2 * n_mfcc "
                             f"columns (e.g. {N_TAGS + MFCC_STAT_COLUMNS}), got {t.shape[-1]}")
        n_mfcc = (extra - 1) // 2
        st = t[..., N_TAGS:].sum(-2)
        n = np.maximum(st[..., :1], 1.0)
        mean = st[..., 1 : 1 + n_mfcc] / n
        var = np.maximum(st[..., 1 + n_mfcc :] / n - mean**2, 1e-8)
        parts += [mean, np.log(var)]
    return np.concatenate(parts, axis=-1).astype(np.float32)


def inset_window_features(msd: np.ndarray, mtt: np.ndarray) -> np.ndarray:
    """The in-set model's features of a window of patches: ``ms_lm`` statistics of the MSD tags
    [n, 50] of every patch, then the mean logit and the std of the MTT tags [n, 50] over the
    patches the second backbone ran on (its rows that are not NaN)."""
    ran = np.asarray(mtt, np.float64)
    ran = ran[~np.isnan(ran).any(axis=1)]
    if len(ran) == 0:
        raise ValueError("no patch of the window has MTT tags")
    p = np.clip(ran, _EPS, 1 - _EPS)
    return np.concatenate([window_features(msd, "ms_lm"), np.log(p / (1 - p)).mean(0), ran.std(0)]).astype(np.float32)


def clip_mfcc_rows(n_patches: int, mean: np.ndarray, var: np.ndarray, n_frames: int) -> np.ndarray:
    """[n_patches, 41] MFCC columns for a clip known only by its whole-clip MFCC mean and variance
    (the stored training / test taggrams + ``features_30_sec.csv``): the frames are shared out
    evenly over the patches, so the whole clip's window gives back exactly ``mean`` and ``var``."""
    mean = np.asarray(mean, np.float64)
    var = np.asarray(var, np.float64)
    c = float(n_frames) / max(n_patches, 1)
    row = np.concatenate([[c], mean * c, (var + mean**2) * c])
    return np.repeat(row[None], n_patches, axis=0)


def svm_ovr_decision(m: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    """sklearn ``SVC(decision_function_shape='ovr').decision_function`` of standardised features
    z [D] or [b, D] -> [.., n_classes], from an exported RBF SVC (member tensors ``sv``,
    ``dual_coef``, ``intercept``, ``n_support``, ``gamma``).

    libsvm one-vs-one: for each pair (i, j), i < j, in that order, dec = sum over class-i support
    vectors of dual_coef[j-1] K + sum over class-j support vectors of dual_coef[i] K + intercept;
    dec > 0 votes for i. Then sklearn's ``_ovr_decision_function``: votes + s / (3 (|s| + 1)),
    where s sums +dec for i and -dec for j over the pairs.
    """
    z = np.asarray(z, dtype=np.float64)
    single = z.ndim == 1
    z = np.atleast_2d(z)
    sv = m["sv"].astype(np.float64)
    coef = m["dual_coef"].astype(np.float64)
    intercept = m["intercept"].astype(np.float64).reshape(-1)
    n_sup = np.rint(m["n_support"].reshape(-1)).astype(int)
    gamma = float(m["gamma"].reshape(-1)[0])
    d2 = (z * z).sum(-1, keepdims=True) - 2 * z @ sv.T + (sv * sv).sum(-1)
    k = np.exp(-gamma * np.maximum(d2, 0))  # [b, n_sv]
    n = len(n_sup)
    start = np.concatenate([[0], np.cumsum(n_sup)])
    votes = np.zeros((len(z), n))
    conf = np.zeros((len(z), n))
    p = 0
    for i in range(n):
        si = slice(start[i], start[i + 1])
        for j in range(i + 1, n):
            sj = slice(start[j], start[j + 1])
            dec = k[:, si] @ coef[j - 1, si] + k[:, sj] @ coef[i, sj] + intercept[p]
            votes[:, i] += dec > 0
            votes[:, j] += dec <= 0
            conf[:, i] += dec
            conf[:, j] -= dec
            p += 1
    out = votes + conf / (3 * (np.abs(conf) + 1))
    return out[0] if single else out


def ovr_confidence(ovr: np.ndarray) -> np.ndarray:
    """The summed one-vs-one decision values ``s`` inside sklearn's ovr values
    ``votes + s / (3 (|s| + 1))``: the vote counts are integers and the second term lies in
    (-1/3, 1/3), so ``votes = round(ovr)`` and ``s`` follows from the remainder exactly."""
    frac = np.clip(ovr - np.round(ovr), -0.3333, 0.3333)
    return np.sign(frac) * 3 * np.abs(frac) / (1 - 3 * np.abs(frac))


def svm_temperature(m: dict[str, np.ndarray], ovr: np.ndarray) -> np.ndarray:
    """The softmax temperature of an SVC member for ovr values [.., L]: a constant
    (``temperature``), or ``exp(a + b * s_top)`` (``temperature_coef`` = [a, b]) where ``s_top``
    is the winning class's summed pairwise decision value, so a clear winner gets a sharper
    distribution than a narrow one (never a different ranking: every T is positive)."""
    if "temperature_coef" in m:
        a, b = (float(v) for v in m["temperature_coef"].reshape(-1)[:2])
        conf = ovr_confidence(ovr)
        top = np.take_along_axis(conf, ovr.argmax(-1)[..., None], -1)[..., 0]
        return np.exp(np.clip(a + b * top, -20, 20))[..., None]
    return np.asarray(float(m["temperature"].reshape(-1)[0]))


class TaggramHead:
    """An ensemble on standardised window features; the members' probabilities are averaged.

    Member ``m{i}`` is one of: an MLP (``w1, b1, w2, b2``), a linear softmax (``w1, b1``), an
    RBF-kernel logistic regression (``anchors, alpha, bias, gamma``: logits = K(z, anchors) alpha
    + bias with K = exp(-gamma |z - a|^2)), or an RBF SVC (``sv, dual_coef, intercept, n_support,
    gamma, temperature[, temperature_coef]``: logits = sklearn's ovr decision values / T, see
    :func:`svm_ovr_decision` and :func:`svm_temperature`). Plain numpy, so loading runs no code from the file.

    A member may carry its own standardisation (``mu``, ``sigma``) over the first ``len(mu)``
    window features: ``ms`` is a prefix of ``ms_lm``, so one ``ms_lm`` head can hold members
    fitted on either (members of different kinds, fitted on differently sampled windows).
    """

    def __init__(self, tensors: dict[str, np.ndarray], feature_kind: str):
        self.kind = feature_kind
        self.mu = tensors.get("mu")
        self.sigma = tensors.get("sigma")
        self.members: list[dict[str, np.ndarray]] = []
        i = 0
        while any(k.startswith(f"m{i}.") for k in tensors):
            self.members.append({k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(f"m{i}.")})
            i += 1

    @staticmethod
    def member_logits(m: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
        if "sv" in m:
            ovr = svm_ovr_decision(m, z)
            return ovr / svm_temperature(m, ovr)
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
        return self.probs_windows(taggram, [slice(None)])[0]

    def probs_windows(self, taggram: np.ndarray, windows: list[slice]) -> np.ndarray:
        """[len(windows), n_labels]: ``probs(taggram[w])`` for every window ``w``, in one batch
        per member (a timeline asks for one window per patch; per-patch members classify each
        patch once instead of once per window that holds it)."""
        taggram = np.asarray(taggram)
        out = 0.0
        f_win = None
        for m in self.members:
            mu, sigma = (m["mu"], m["sigma"]) if "mu" in m else (self.mu, self.sigma)
            if "per_patch" in m:
                f = window_features(taggram[:, None, :], self.kind)[:, : len(mu)]
                per_patch = self._softmax(self.member_logits(m, (f - mu) / sigma))  # [n, L]
                out = out + np.stack([per_patch[w].mean(0) for w in windows])
            else:
                if f_win is None:
                    f_win = np.stack([window_features(taggram[w], self.kind) for w in windows])
                out = out + self._softmax(self.member_logits(m, (f_win[:, : len(mu)] - mu) / sigma))
        return np.asarray(out / len(self.members), dtype=np.float32)


def svm_member_from_sklearn(svc: Any, temperature: float = 1.0,
                            temperature_coef: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
    """Member tensors of a fitted ``sklearn.svm.SVC`` (RBF kernel, >2 classes, fitted on
    already-standardised features). Reads the estimator's attributes only: sklearn is needed to
    train, never to predict."""
    if svc.kernel != "rbf" or len(svc.classes_) < 3:
        raise ValueError("only multi-class RBF SVCs are supported")
    return {"sv": np.asarray(svc.support_vectors_, np.float32),
            "dual_coef": np.asarray(svc.dual_coef_, np.float32),
            "intercept": np.asarray(svc.intercept_, np.float32),
            "n_support": np.asarray(svc.n_support_, np.float32),
            "gamma": np.array([svc._gamma], np.float32),
            "temperature": np.array([temperature], np.float32)} | (
        {"temperature_coef": np.array(temperature_coef, np.float32)} if temperature_coef is not None else {})


def long_input_windows(n: int, window: int, hop: int) -> list[slice]:
    """Windows of ``window`` patches every ``hop`` over ``n`` patches, the last one ending at the
    last patch (one window, all patches, when ``n <= window``)."""
    if n <= window:
        return [slice(0, n)]
    starts = list(range(0, n - window + 1, hop))
    if starts[-1] != n - window:
        starts.append(n - window)
    return [slice(s, s + window) for s in starts]


def segment_windows(n: int, half: int) -> list[slice]:
    """For each patch, the window of up to ``2 * half + 1`` patches around it."""
    return [slice(max(0, i - half), min(n, i + half + 1)) for i in range(n)]


class MusicnnGenreModel(GenreModel):
    """musicnn MSD backbone + taggram head; see the module docstring."""

    format = FORMAT

    def __init__(self, head: TaggramHead, labels: list[str], spec: FeatureSpec, metrics: dict[str, Any] | None = None,
                 info: dict[str, Any] | None = None, backbone: str = "MSD_musicnn", segment_half_window: int = 1,
                 weights: str | None = None, segment_head: TaggramHead | None = None,
                 track_window: int | None = None, track_window_hop: int | None = None,
                 head_labels: list[str] | None = None, open_head: TaggramHead | None = None,
                 open_set: dict[str, Any] | None = None, inset_head: dict[str, np.ndarray] | None = None,
                 audioset: dict[str, Any] | None = None, audioset_head: dict[str, np.ndarray] | None = None) -> None:
        super().__init__(labels, spec, metrics, info)
        self.head = head
        # an open-set head scores the model's labels plus a last "other" class (music outside them)
        self.head_labels = list(head_labels) if head_labels else list(labels)
        self.has_other = len(self.head_labels) == len(labels) + 1
        if self.head_labels[: len(labels)] != list(labels):
            raise ValueError("the track head's labels must start with the model's labels")
        self.open_head = open_head
        cfg = open_set or {}
        # every in-set score is recalibrated so that 0.5 is its decision threshold (``recalibrate``)
        self.open_threshold = 0.5 if self.has_other and "track_threshold" in cfg else None
        self._raw_thresholds = {k: float(cfg.get(f"{k}_threshold", 0.5)) for k in ("track", "segment", "inset", "fused")}
        # the in-set model proper reads a second backbone's tags on every stride-th patch
        self.inset_head = inset_head if inset_head and cfg.get("inset_backbone") else None
        self.inset_backbone = str(cfg["inset_backbone"]) if self.inset_head else None
        self.inset_stride = max(1, int(cfg.get("inset_patch_stride", 1))) if self.inset_head else 1
        self.segment_head = segment_head or head
        self.backbone_name = backbone
        self.segment_half_window = segment_half_window
        # a model file's values: positive ints, else the whole input goes to the head at once
        self.track_window = int(track_window) if isinstance(track_window, int) and track_window > 0 else None
        hop = int(track_window_hop) if isinstance(track_window_hop, int) and track_window_hop > 0 else None
        self.track_window_hop = hop or (max(1, self.track_window // 2) if self.track_window else None)
        self.weights = weights
        self._last: tuple[np.ndarray, dict[str, np.ndarray]] | None = None
        # the AudioSet backbone (EfficientAT mn04) on 10 s windows at every stride-th patch, and the
        # head over its track features whose log-probabilities are mixed with the musicnn head's
        cfg_as = audioset or {}
        self.audioset_head = audioset_head if audioset_head and cfg_as else None
        self.audioset = dict(cfg_as) if self.audioset_head is not None else None
        self.audioset_weights: str | None = None  # a user's --efficientat-weights (None: the lookup's order)

    # -- the AudioSet backbone ----------------------------------------------------------------------
    def features(self, y: np.ndarray) -> Features:
        """The spec's musicnn patches and, with an AudioSet head, mn04's outputs for the windows that
        start at every ``patch_stride``-th patch, packed as extra rows of those patches
        (``audioset.pack_rows``) so that they travel with their patch through block-wise prediction."""
        f = self.spec.extract(y)
        if self.audioset is None:
            return f
        from genrekit.models import audioset as AS

        rows = AS.window_rows(y, self.spec.sample_rate, f.starts, window_s=float(self.audioset["window_seconds"]),
                              stride=int(self.audioset["patch_stride"]), weights=self.audioset_weights)
        packed = AS.pack_rows(rows, f.values.shape[2])
        return Features(np.concatenate([f.values, packed], axis=1), f.starts, f.ends)

    @property
    def _value_rows(self) -> int:
        """Rows of a patch's values before any AudioSet rows: the log-mel frames (+ the MFCC row)."""
        frames = int(getattr(self.spec, "patch_frames", 187))
        return frames + (1 if hasattr(self.spec, "stat_columns") else 0)

    def audioset_rows(self, values: np.ndarray) -> np.ndarray | None:
        """[n, 911] mn04 outputs per patch (NaN where no window started), or None."""
        values = np.asarray(values)
        if self.audioset is None or values.ndim != 3 or values.shape[1] <= self._value_rows:
            return None
        from genrekit.models import audioset as AS

        return AS.unpack_rows(values[:, self._value_rows :])

    # -- backbone -------------------------------------------------------------------------------
    def backbone_outputs(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """musicnn 'tags' [n, 50] and 'penultimate' [n, 200] of the patches (memoised for the
        last input, because prediction asks for segment, track and tag outputs of one track; the
        memo holds the array itself and compares identity, so a freed array's id cannot alias)."""
        if self._last is not None and self._last[0] is values:
            return self._last[1]
        from genrekit.backbones.runners import backbone_runner

        hop = getattr(self.spec, "patch_hop_frames", None)  # overlapping patches share the front end
        out = backbone_runner(self.backbone_name, self.weights).run(self.split_values(values)[0], hop=hop)
        self._last = (values, out)
        return out

    def split_values(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(log-mel patches [n, 187, 96], MFCC slot statistics [n, 41] or None): a
        ``MusicnnMfccSpec`` packs the statistics into an extra row of each patch."""
        values = np.asarray(values)
        frames = int(getattr(self.spec, "patch_frames", 187))
        if values.ndim == 3 and values.shape[1] > frames:
            return values[:, :frames], values[:, frames, : int(getattr(self.spec, "stat_columns", MFCC_STAT_COLUMNS))]
        return values, None

    def taggram(self, values: np.ndarray) -> np.ndarray:
        return self.backbone_outputs(values)["tags"]

    @property
    def base_columns(self) -> int:
        """Columns of a patch row that the heads read: the backbone's tags, plus the MFCC slot
        statistics when the spec makes them. The in-set backbone's tags follow, when there is
        one (``patch_rows``); no head may read past this width."""
        stats = int(getattr(self.spec, "stat_columns", 0)) if hasattr(self.spec, "stat_columns") else 0
        return N_TAGS + stats

    def _inset_columns(self, taggram: np.ndarray) -> np.ndarray | None:
        """The in-set backbone's tags [n, 50] at the end of the rows, or None when the rows do not
        carry them (stored taggrams, models without an in-set backbone)."""
        if self.inset_head is None or taggram.ndim != 2 or taggram.shape[1] != self.base_columns + N_TAGS:
            return None
        return taggram[:, self.base_columns :]

    def patch_rows(self, values: np.ndarray) -> np.ndarray:
        """What the heads read per patch: the taggram [n, 50], plus the MFCC slot statistics
        [n, 41] when the spec provides them ([n, 91])."""
        tags = self.taggram(values)
        stats = self.split_values(values)[1]
        rows = tags if stats is None else np.concatenate([tags, stats.astype(tags.dtype)], axis=1)
        if self.inset_backbone is not None:
            rows = np.concatenate([rows, self.inset_tags(values)], axis=1)
        extra = self.audioset_rows(values)
        if extra is not None:
            rows = np.concatenate([rows, extra], axis=1)
        return rows

    @property
    def _audioset_start(self) -> int:
        """First column of the AudioSet outputs in a patch row (after the base and in-set columns)."""
        return self.base_columns + (N_TAGS if self.inset_head is not None else 0)

    def _audioset_mean(self, taggram: np.ndarray) -> np.ndarray | None:
        """[911] mean of the mn04 rows that ran, when the rows carry them (None otherwise: stored
        taggrams, or inputs too short for a window)."""
        from genrekit.models import audioset as AS

        if self.audioset is None or taggram.ndim != 2 or taggram.shape[1] != self._audioset_start + AS.ROW:
            return None
        return AS.track_features(taggram[:, self._audioset_start :])

    def _fused_probs(self, taggram: np.ndarray) -> np.ndarray:
        """Track probabilities over ``head_labels``: the musicnn head's, mixed on the log scale with
        the AudioSet head's (weight ``alpha`` for musicnn) when the rows carry mn04 outputs, and with
        ``zero_shot_weight`` mn04's own vote among the labels (``heads.fusion.mix``, the mix the
        training CV computes)."""
        p = self._head_probs(np.asarray(taggram)[:, : self.base_columns])
        mean = self._audioset_mean(np.asarray(taggram))
        if mean is None:
            return p
        from genrekit.heads import logistic as LR
        from genrekit.heads.fusion import mix
        from genrekit.models import audioset as AS

        q = LR.probs(self.audioset_head, AS.head_features(mean, str(self.audioset["feature"])))
        gamma = float(self.audioset.get("zero_shot_weight", 0.0))
        zs = AS.zero_shot_logp(mean, self.labels) if gamma else None  # mn04's own genre classes vote
        return mix(p, q, float(self.audioset["alpha"]), len(self.labels), zs, gamma).astype(np.float32)

    def inset_tags(self, values: np.ndarray) -> np.ndarray:
        """[n, 50] tags of the in-set backbone on every ``inset_stride``-th patch (NaN rows
        between): a few patches spread over the input describe it well enough for the in-set
        score, at a fraction of a second backbone's cost."""
        from genrekit.backbones.runners import backbone_runner

        patches = self.split_values(values)[0]
        out = np.full((len(patches), N_TAGS), np.nan, np.float32)
        picked = patches[:: self.inset_stride]
        if len(picked):
            out[:: self.inset_stride] = backbone_runner(self.inset_backbone, self.weights).run(picked)["tags"]
        return out

    @property
    def needs_mfcc_stats(self) -> bool:
        """True when a head reads MFCC statistics (rows of stored taggrams need them attached:
        ``datasets.attach_clip_mfcc``)."""
        return "ms_mfcc" in (self.head.kind, self.segment_head.kind)

    # -- GenreModel -----------------------------------------------------------------------------
    def segment_probs(self, values: np.ndarray) -> np.ndarray:
        return self.segment_probs_from_taggram(self.patch_rows(values))

    def track_probs(self, values: np.ndarray) -> np.ndarray:
        return self.track_probs_from_taggram(self.patch_rows(values))

    def tag_probs(self, values: np.ndarray, top_k: int | None = 10) -> dict[str, float]:
        """Zero-shot MSD tags of the track (mean over patches), best first."""
        from genrekit.backbones.musicnn import LABELS

        mean = self.taggram(values)[:, :N_TAGS].mean(axis=0)
        order = np.argsort(-mean)[: top_k or None]
        names = LABELS[self.backbone_name]
        return {names[i]: float(mean[i]) for i in order}

    def audioset_tags(self, taggram: np.ndarray) -> dict[str, float] | None:
        """{AudioSet music class: probability} (sigmoid of the mean logit over the track's mn04
        windows) for the music branch of the ontology (instruments, genres, moods), or None when
        the rows carry no mn04 outputs."""
        mean = self._audioset_mean(np.asarray(taggram))
        if mean is None:
            return None
        from genrekit.models import audioset as AS

        names = AS.labels()
        return {names[i]: float(1 / (1 + np.exp(-mean[i]))) for i in AS.TAG_CLASSES}

    # -- from stored taggrams (training data, evaluation) ----------------------------------------
    def segment_probs_from_taggram(self, taggram: np.ndarray) -> np.ndarray:
        n = len(taggram)
        if n == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        rows = np.asarray(taggram)[:, : self.base_columns]  # never the in-set backbone's columns
        return self.segment_head.probs_windows(rows, segment_windows(n, self.segment_half_window))

    def probe_outputs(self) -> int:
        """Columns of both heads' probabilities on a few rows of zeros (``base.check_outputs``
        compares it with the labels, so a head file with a shortened label list is refused)."""
        rows = np.zeros((8, self.base_columns if self.needs_mfcc_stats else N_TAGS), np.float32)
        n_track = int(np.asarray(self.track_probs_from_taggram(rows)).shape[-1])
        n_seg = int(np.asarray(self.segment_probs_from_taggram(rows)).shape[-1])
        if n_track != n_seg:
            raise ValueError(f"the track head gives {n_track} probabilities, the segment head {n_seg}")
        return n_track

    def track_probs_from_taggram(self, taggram: np.ndarray) -> np.ndarray:
        """The track head on the whole input when it is no longer than the head's training
        tracks (``track_window`` patches); on longer inputs the mean of its probabilities over
        windows of that length, because the statistics of minutes of music (sections that
        differ) lie outside what it learnt from 30 s clips (``scripts/cv_long_inputs.py``)."""
        p = self._fused_probs(np.asarray(taggram))
        if not self.has_other:
            return p
        closed = p[: len(self.labels)]  # the forced choice among the model's labels
        return (closed / max(float(closed.sum()), 1e-12)).astype(np.float32)

    def _head_probs(self, taggram: np.ndarray) -> np.ndarray:
        """The track head's probabilities over ``head_labels`` (whole input, or the mean over
        ``track_window``-patch windows of a longer one)."""
        if not self.track_window:
            return self.head.probs(taggram)
        windows = long_input_windows(len(taggram), self.track_window, self.track_window_hop)  # one when short
        return self.head.probs_windows(taggram, windows).mean(0)

    # -- the open set -----------------------------------------------------------------------------
    def in_set_from_taggram(self, taggram: np.ndarray) -> float | None:
        """How likely the track is one of the model's genres (None for a head without "other"):
        1 - p(other) of the in-set model when the rows carry the second backbone's tags (columns
        after the model's own), else of the 11-class track head (stored taggrams), each mapped so
        that its threshold, chosen by grouped cross-validation over real-song sources, is 0.5.
        Prediction answers "other" below ``open_threshold`` (0.5)."""
        if not self.has_other or len(taggram) == 0:
            return None
        taggram = np.asarray(taggram)
        if self._audioset_mean(taggram) is not None:
            return recalibrate(1.0 - float(self._fused_probs(taggram)[-1]), self._raw_thresholds["fused"])
        mtt = self._inset_columns(taggram)
        base = taggram[:, : self.base_columns]
        windows = long_input_windows(len(taggram), self.track_window or len(taggram), self.track_window_hop or 1)
        m = self.inset_head
        scores = []
        for w in windows if mtt is not None else []:
            # one MTT patch has no spread (std 0), unlike every training window: such a window is
            # left to the track head's own score (inputs under ~5 s)
            if (~np.isnan(mtt[w]).any(axis=1)).sum() < MIN_INSET_PATCHES:
                continue
            z = (inset_window_features(taggram[w, :N_TAGS], mtt[w]) - m["mu"]) / m["sigma"]
            p = TaggramHead._softmax(TaggramHead.member_logits(m, z[None]))[0]
            scores.append(1.0 - float(p[-1]))
        if not scores:
            return recalibrate(1.0 - float(self._head_probs(base)[-1]), self._raw_thresholds["track"])
        return recalibrate(float(np.mean(scores)), self._raw_thresholds["inset"])

    def segment_in_set_from_taggram(self, taggram: np.ndarray) -> np.ndarray | None:
        """[n] in-set score of each segment's window of patches (the timeline's "other"
        stretches), from the open head fitted on 1-3 patch windows; None without one."""
        if self.open_head is None or len(taggram) == 0:
            return None
        rows = np.asarray(taggram)[:, : self.base_columns]
        p = self.open_head.probs_windows(rows, segment_windows(len(rows), self.segment_half_window))
        return np.asarray(recalibrate(1.0 - p[:, -1], self._raw_thresholds["segment"]), np.float32).reshape(-1)

    def style_from_taggram(self, taggram: np.ndarray, k: int = 2) -> str | None:
        """A short description of the music in the backbone's own style words (e.g. "electronic,
        dance"): the ``k`` most probable MSD tags that name a style, from the mean over patches."""
        from genrekit.backbones.musicnn import LABELS

        mean = self._audioset_mean(np.asarray(taggram)) if len(taggram) else None
        if mean is not None:  # AudioSet's genre words are finer ("salsa music", "afrobeat")
            from genrekit.models import audioset as AS

            return AS.style(mean)
        names = LABELS.get(self.backbone_name)
        if names is None or len(taggram) == 0:
            return None
        mean = np.asarray(taggram)[:, : len(names)].mean(0)
        picked = [names[i] for i in np.argsort(-mean) if names[i] in STYLE_TAGS][:k]
        return ", ".join(t.lower() for t in picked) or None


def model_from_file(tensors: dict[str, Any], meta: dict[str, Any], path: Path) -> MusicnnGenreModel:
    t = {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v, dtype=np.float32) for k, v in tensors.items()}
    kind = meta.get("feature_kind", "ms_lm")  # one kind for both heads (older head files)
    if any(k.startswith("track.") for k in t):
        head = TaggramHead({k[6:]: v for k, v in t.items() if k.startswith("track.")},
                           meta.get("track_feature_kind", kind))
        seg_head = TaggramHead({k[8:]: v for k, v in t.items() if k.startswith("segment.")},
                               meta.get("segment_feature_kind", kind))
    else:  # a single head for both
        head = seg_head = TaggramHead(t, kind)
    spec = spec_from_dict(meta["feature_spec"])
    info = {k: meta[k] for k in ("name", "description", "backbone", "training") if k in meta}
    open_set = meta.get("open_set") if isinstance(meta.get("open_set"), dict) else {}
    open_t = {k[5:]: v for k, v in t.items() if k.startswith("open.")}
    open_head = TaggramHead(open_t, open_set.get("segment_feature_kind", kind)) if open_t else None
    inset = {k[len("inset.m0."):]: v for k, v in t.items() if k.startswith("inset.m0.")}
    audioset_head = {k[len("audioset.m0."):]: v for k, v in t.items() if k.startswith("audioset.m0.")}
    audioset = meta.get("audioset") if isinstance(meta.get("audioset"), dict) else None
    return MusicnnGenreModel(head, meta["labels"], spec, meta.get("metrics"), info, segment_head=seg_head,
                             backbone=meta.get("backbone", "MSD_musicnn"),
                             segment_half_window=int(meta.get("segment_half_window", 1)),
                             track_window=meta.get("track_window_patches"), track_window_hop=meta.get("track_window_hop"),
                             head_labels=meta.get("track_head_labels"), open_head=open_head,
                             open_set=open_set, inset_head=inset or None,
                             audioset=audioset, audioset_head=audioset_head or None)


register_loader(FORMAT, model_from_file)

def load_default_model() -> GenreModel:
    """The committed default model (``models.base.BUILTIN_MODELS``; kept for callers of old)."""
    from genrekit.models.base import load_model

    return load_model(None)
