"""The two-backbone built-in (``--model musicnn``, ``models.default``): committed head file,
taggram-level accuracy on the fault-filtered test split, per-segment outputs, zero-shot tags, and a
short end-to-end audio check. The default model (mn04 alone) is tested in test_audioset_head.py."""

from __future__ import annotations

import numpy as np
import pytest

from genrekit.datasets import clip_by_stem
from genrekit.features import MusicnnMfccSpec
from genrekit.models.base import load_model
from genrekit.models.default import (
    FORMAT,
    GENRES,
    HEAD_PATH,
    MusicnnGenreModel,
    TaggramHead,
    clip_mfcc_rows,
    long_input_windows,
    ovr_confidence,
    segment_windows,
    svm_member_from_sklearn,
    svm_ovr_decision,
    window_features,
)


def _tracks(npz):
    """Per track: stored taggram rows + the clip's MFCC columns (features_30_sec.csv), labels."""
    from genrekit.datasets import attach_clip_mfcc, read_clip_mfcc_table, track_key

    d = np.load(npz)
    ids = np.array([str(i) for i in d["IDS"]])
    keys = list(dict.fromkeys(ids))
    table = read_clip_mfcc_table(npz.parent.parent / "gtzan-features" / "features_30_sec.csv")
    X = attach_clip_mfcc(d["X"].astype(np.float32), np.array([track_key(i) for i in ids]), table)
    return [X[ids == k] for k in keys], np.array([int(d["Y"][ids == k][0]) for k in keys])


def test_head_file_is_small_and_described():
    from genrekit.models.modelfile import read_model_meta

    assert HEAD_PATH.stat().st_size < 2_000_000
    meta = read_model_meta(HEAD_PATH)
    assert meta["format"] == FORMAT and meta["labels"] == GENRES
    assert meta["backbone"] == "MSD_musicnn"
    spec = meta["feature_spec"]
    assert spec["kind"] == "musicnn_mfcc" and spec["sample_rate"] == 22050  # read at 22.05 kHz ...
    assert spec["musicnn_sample_rate"] == 16000 and spec["patch_frames"] == 187 and spec["n_mels"] == 96  # ... musicnn at 16
    assert spec["context_seconds"] == 10.0 and spec["context_stride"] == 10  # mn04's 10 s windows, every 10th patch
    assert {"accuracy", "macro_f1", "confusion"} <= set(meta["metrics"]["test_track"])
    # the open-set heads (scripts/train_default_model.py): the ten genres + "other"
    assert meta["track_feature_kind"] == "ms_lm" and meta["segment_feature_kind"] == "ms_lm"
    assert meta["track_head_labels"] == [*GENRES, "other"]
    cfg = meta["open_set"]
    assert all(0 < cfg[f"{k}_threshold"] < 1 for k in ("fused", "track", "segment"))
    assert "inset_backbone" not in cfg  # mn04 serves the in-set score: no MTT pass
    aset = meta["audioset"]
    assert aset["backbone"] == "efficientat_mn04" and aset["feature"] == "all" and 0 < aset["alpha"] < 1
    assert "MIT" in meta["backbones"]["audioset"] and "ISC" in meta["backbones"]["musicnn"]
    # made by the public command (scripts/train_default_model.py only writes its manifest and options)
    t = meta["training"]
    assert t["script"] == "genrekit train --model head" and t["driver"] == "scripts/train_default_model.py"
    data = t["data"]
    assert data["always_in_fit"] == {"gtzan": 124}  # GTZAN's train + valid clips with audio
    assert data["songs_outside_labels"] == 98 and data["songs"] == 145 + 124 and data["groups"] == 56 + 1
    assert len(t["fit_files"]) == 367
    assert t["config"]["zero_shot_weight"] == aset["zero_shot_weight"] == 0.5 and t["config"]["class_weight"] == "none"
    assert meta["name"] == "musicnn" and t["config"]["backbone"] == "musicnn+mn04"
    m = meta["metrics"]
    assert m["cv"]["n"] == 145 and "leave one group out (56 folds)" in m["cv_protocol"]  # leave one source out
    parts = m["cv_components"]
    assert parts["the model"]["accuracy"] == m["cv"]["accuracy"]
    assert parts["the model"]["other_caught"] == m["other_caught"]
    # the mix must beat each backbone's head alone under the same protocol
    assert m["cv"]["accuracy"] > parts["musicnn head alone"]["accuracy"]
    assert m["cv"]["accuracy"] > parts["AudioSet (mn04) head alone"]["accuracy"]


def test_load_default_model():
    m = load_model("musicnn")
    assert isinstance(m, MusicnnGenreModel) and load_model("musicnn") is m
    assert m.labels == GENRES and isinstance(m.spec, MusicnnMfccSpec)
    assert m.card()["format"] == FORMAT
    assert m.head.kind == "ms_lm" and m.segment_head.kind == "ms_lm"  # feature kind per head
    assert not m.needs_mfcc_stats  # the heads read the tags only
    assert m.has_other and m.head_labels[-1] == "other" and m.open_head is not None
    assert m.audioset is not None and m.audioset_head is not None  # the AudioSet (mn04) part
    assert len(m.head.members) == 1 and {"w1", "b1", "mu", "sigma"} <= set(m.head.members[0])


def test_test_split_accuracy_matches_card(shared_data):
    """The 290 fault-filtered test tracks from the stored taggrams reproduce the card's numbers."""
    m = load_model("musicnn")
    tracks, y = _tracks(shared_data / "gtzan-musicnn" / "msd_taggram_test.npz")
    assert len(tracks) == 290
    pred = np.array([np.argmax(m.track_probs_from_taggram(t)) for t in tracks])
    acc = float((pred == y).mean())
    assert acc == pytest.approx(m.metrics["test_track"]["accuracy"], abs=1e-9)
    assert acc >= 0.80  # the bar for the shipped model's musicnn head (model card)


def test_open_set_head_is_the_formula(shared_data):
    """The track head is softmax(((features - mu) / sigma) W^T + b) over the ten genres + other;
    the closed-set answer renormalises the ten, and in_set = 1 - p(other)."""
    from genrekit.models.default import recalibrate

    m = load_model("musicnn")
    tracks, _ = _tracks(shared_data / "gtzan-musicnn" / "msd_taggram_train.npz")
    mem = m.head.members[0]
    for t in tracks[:5]:
        z = (window_features(t[:, :50], "ms_lm") - mem["mu"]) / mem["sigma"]
        h = z @ mem["w1"].T + mem["b1"]
        p = np.exp(h - h.max())
        p /= p.sum()
        assert len(p) == 11
        np.testing.assert_allclose(m.track_probs_from_taggram(t), p[:10] / p[:10].sum(), rtol=1e-4, atol=1e-6)
        raw = m._raw_thresholds["track"]  # stored taggrams (no MTT tags): the track head's own score,
        assert m.in_set_from_taggram(t) == pytest.approx(recalibrate(1 - p[10], raw), abs=1e-5)  # 0.5 at raw
        assert recalibrate(raw, raw) == pytest.approx(0.5)
        seg = m.segment_in_set_from_taggram(t)
        assert seg.shape == (len(t),) and np.all((seg >= 0) & (seg <= 1))
    assert m.in_set_from_taggram(tracks[0][:0]) is None


def _with_audioset_columns(m, taggram: np.ndarray, seed: int = 0) -> np.ndarray:
    """Patch rows as prediction makes them: tags, MFCC statistics (zeros), then mn04's 911 outputs
    on every 10th patch (NaN between)."""
    from genrekit.models import audioset as AS
    from genrekit.models.default import MFCC_STAT_COLUMNS

    rng = np.random.default_rng(seed)
    extra = np.full((len(taggram), AS.ROW), np.nan, np.float32)
    extra[::10] = rng.normal(-3.0, 1.5, size=extra[::10].shape)
    return np.concatenate([taggram[:, :50], np.zeros((len(taggram), MFCC_STAT_COLUMNS), np.float32), extra], axis=1)


def test_fused_heads_are_the_formula(shared_data):
    """With mn04 outputs in the rows, the track answer mixes the musicnn head and the AudioSet head on
    the log scale (alpha), mn04's zero-shot genre classes add their vote to the ten genres, and
    in_set = 1 - p(other) of the mix, recalibrated at its own threshold; rows without them (stored
    taggrams) get the musicnn head alone. The segment heads never read the mn04 columns."""
    from genrekit.heads import logistic as LR
    from genrekit.models import audioset as AS
    from genrekit.models.default import recalibrate

    m = load_model("musicnn")
    assert m.audioset is not None and m.inset_head is None
    tracks, _ = _tracks(shared_data / "gtzan-musicnn" / "msd_taggram_train.npz")
    t = tracks[3][:, :50]
    rows = _with_audioset_columns(m, t)
    mean = AS.track_features(rows[:, m._audioset_start :])
    p = m.head.probs(t)
    q = LR.probs(m.audioset_head, AS.head_features(mean, m.audioset["feature"]))
    a, g = m.audioset["alpha"], m.audioset["zero_shot_weight"]
    mix = LR.softmax(a * np.log(np.clip(p, 1e-9, 1)) + (1 - a) * np.log(np.clip(q, 1e-9, 1)))
    closed = LR.softmax(np.log(np.clip(mix[:10], 1e-12, 1)) + g * AS.zero_shot_logp(mean, GENRES))
    np.testing.assert_allclose(m.track_probs_from_taggram(rows), closed, rtol=1e-4, atol=1e-6)
    assert m.in_set_from_taggram(rows) == pytest.approx(recalibrate(1 - mix[10], m._raw_thresholds["fused"]), abs=1e-5)
    assert m.in_set_from_taggram(rows) != pytest.approx(m.in_set_from_taggram(t), abs=1e-3)
    np.testing.assert_array_equal(m.segment_probs_from_taggram(rows), m.segment_probs_from_taggram(rows[:, :91]))
    assert np.isfinite(m.segment_in_set_from_taggram(rows)).all()
    assert m.style_from_taggram(rows) == AS.style(mean)  # AudioSet's genre words when it ran
    tags = m.audioset_tags(rows)
    assert len(tags) == len(AS.TAG_CLASSES) and all(0 < v < 1 for v in tags.values())
    assert m.audioset_tags(t) is None


def test_style_words_come_from_style_tags():
    from genrekit.backbones.musicnn import MSD_LABELS
    from genrekit.models.default import STYLE_TAGS

    m = load_model("musicnn")
    rows = np.full((4, 50), 0.01, np.float32)
    rows[:, MSD_LABELS.index("80s")] = 0.9  # a decade, not a style
    rows[:, MSD_LABELS.index("electronic")] = 0.8
    rows[:, MSD_LABELS.index("House")] = 0.7
    assert m.style_from_taggram(rows) == "electronic, house"
    assert "80s" not in STYLE_TAGS and m.style_from_taggram(rows[:0]) is None


def _svc_on_train(shared_data):
    """sklearn's StandardScaler + SVC(C=2, gamma='scale') refitted on the train split's
    tag mean+std + MFCC mean / log variance, as scripts/train_default_head.py fits the committed
    track head."""
    pytest.importorskip("sklearn")
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    tracks, y = _tracks(shared_data / "gtzan-musicnn" / "msd_taggram_train.npz")
    X = np.stack([window_features(t, "ms_mfcc") for t in tracks])
    scaler = StandardScaler().fit(X)
    return tracks, X, scaler, SVC(C=2.0, kernel="rbf", gamma="scale").fit(scaler.transform(X), y)


def test_svm_decision_equals_sklearn_synthetic():
    """The numpy libsvm one-vs-one + ovr aggregation equals sklearn's decision_function and
    predict for unequal class sizes, shuffled labels and several class counts."""
    pytest.importorskip("sklearn")
    from sklearn.svm import SVC

    rng = np.random.default_rng(0)
    for n_classes in (3, 4, 7):
        y = rng.permutation(np.repeat(np.arange(n_classes), rng.integers(8, 30, size=n_classes)))
        X = rng.normal(size=(len(y), 6)) + y[:, None] * 0.4
        for c in (0.3, 10.0):
            svc = SVC(C=c, gamma="scale").fit(X, y)
            m = svm_member_from_sklearn(svc)
            Xq = rng.normal(size=(50, 6)) + rng.integers(0, n_classes, size=(50, 1)) * 0.4
            m64 = {k: v.astype(np.float64) for k, v in m.items()}
            m64["sv"], m64["dual_coef"] = svc.support_vectors_, svc.dual_coef_
            m64["intercept"], m64["gamma"] = svc.intercept_, np.array([svc._gamma])
            np.testing.assert_allclose(svm_ovr_decision(m64, Xq), svc.decision_function(Xq), atol=1e-9)
            ovr = svm_ovr_decision(m64, Xq)
            # argmax == predict except where one-vs-one votes tie: libsvm's predict takes the lowest
            # class index there, the ovr values (and so our probabilities) the larger confidence
            votes = np.floor(ovr + 0.5)
            untied = (votes == votes.max(1, keepdims=True)).sum(1) == 1
            assert untied.mean() > 0.5
            np.testing.assert_array_equal(ovr.argmax(1)[untied], svc.predict(Xq)[untied])
            np.testing.assert_array_equal(np.floor(ovr + 0.5), np.floor(svc.decision_function(Xq) + 0.5))
            np.testing.assert_allclose(svm_ovr_decision(m64, Xq[0]), svc.decision_function(Xq[:1])[0], atol=1e-9)


def test_svm_head_exported_from_same_fit_is_exact(shared_data):
    """Exporting an sklearn fit and running it through TaggramHead keeps decisions to float32
    rounding (the exporter reads attributes only; no sklearn at prediction)."""
    tracks, X, scaler, svc = _svc_on_train(shared_data)
    head = TaggramHead({"mu": scaler.mean_.astype(np.float32), "sigma": scaler.scale_.astype(np.float32)}
                       | {f"m0.{k}": v for k, v in svm_member_from_sklearn(svc, 1.0).items()}, "ms_mfcc")
    logits = np.log(np.stack([head.probs(t) for t in tracks[:40]]))
    ref = svc.decision_function(scaler.transform(X[:40]))
    # softmax with temperature 1 is log-softmax of the ovr values: equal up to a per-row constant
    np.testing.assert_allclose(logits - logits.mean(1, keepdims=True), ref - ref.mean(1, keepdims=True), atol=1e-4)


def test_ensemble_members_with_their_own_standardisation():
    """Members of one head may standardise different prefixes of the window features (``ms`` is
    the first 100 of ``ms_lm``): the head averages each member's own probabilities."""
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(4), 15)
    tracks = [np.clip(rng.normal(0.2 + 0.1 * g, 0.1, size=(9, 50)), 0.001, 0.999) for g in y]
    Xms = np.stack([window_features(t, "ms") for t in tracks])
    Xlm = np.stack([window_features(t, "ms_lm") for t in tracks])
    np.testing.assert_array_equal(Xlm[:, :100], Xms)
    s1, s2 = StandardScaler().fit(Xms), StandardScaler().fit(Xlm)
    svc = SVC(C=1.0, gamma="scale").fit(s1.transform(Xms), y)
    lr = LogisticRegression(C=0.1, max_iter=2000).fit(s2.transform(Xlm), y)
    m0 = {"mu": s1.mean_, "sigma": s1.scale_} | svm_member_from_sklearn(svc, 0.5)
    m1 = {"mu": s2.mean_, "sigma": s2.scale_, "w1": lr.coef_, "b1": lr.intercept_}
    head = TaggramHead({f"m0.{k}": np.asarray(v, np.float32) for k, v in m0.items()}
                       | {f"m1.{k}": np.asarray(v, np.float32) for k, v in m1.items()}, "ms_lm")
    dec = svc.decision_function(s1.transform(Xms)) / 0.5
    p_svc = np.exp(dec - dec.max(1, keepdims=True))
    p_svc /= p_svc.sum(1, keepdims=True)
    ref = (p_svc + lr.predict_proba(s2.transform(Xlm))) / 2
    ours = np.stack([head.probs(t) for t in tracks])
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_segment_probs_from_taggram(shared_data):
    m = load_model("musicnn")
    tracks, _ = _tracks(shared_data / "gtzan-musicnn" / "msd_taggram_train.npz")
    t = tracks[0]
    seg = m.segment_probs_from_taggram(t)
    assert seg.shape == (len(t), 10)
    np.testing.assert_allclose(seg.sum(1), 1, atol=1e-5)
    assert m.segment_probs_from_taggram(t[:0]).shape == (0, 10)
    assert m.segment_probs_from_taggram(t[:1]).shape == (1, 10)  # a single 3 s patch
    assert [(w.start, w.stop) for w in segment_windows(3, 1)] == [(0, 2), (0, 3), (1, 3)]
    # the batched timeline equals the head applied window by window (per-patch members included)
    windows = segment_windows(len(t), 1)
    np.testing.assert_allclose(seg, np.stack([m.segment_head.probs(t[w]) for w in windows]), rtol=1e-5, atol=1e-6)
    # ... also for per-patch MLP members (older head files carry them)
    rng = np.random.default_rng(0)
    mix = TaggramHead({"mu": np.zeros(150, np.float32), "sigma": np.ones(150, np.float32),
                       "m0.w1": rng.normal(0, .1, (10, 150)).astype(np.float32), "m0.b1": np.zeros(10, np.float32),
                       "m1.w1": rng.normal(0, .1, (64, 150)).astype(np.float32), "m1.b1": np.zeros(64, np.float32),
                       "m1.w2": rng.normal(0, .1, (10, 64)).astype(np.float32), "m1.b2": np.zeros(10, np.float32),
                       "m1.per_patch": np.ones(1, np.float32)}, "ms_lm")
    assert any("per_patch" in mem for mem in mix.members)
    np.testing.assert_allclose(mix.probs_windows(t, windows), np.stack([mix.probs(t[w]) for w in windows]),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.head.probs_windows(t, windows[:4]), np.stack([m.head.probs(t[w]) for w in windows[:4]]),
                               rtol=1e-5, atol=1e-6)


def test_from_audio_end_to_end(shared_data):
    """Real clips through decode, resample, log-mel, PyTorch musicnn and the head; zero-shot tags.
    (scripts/eval_default_audio.py runs all 74 valid+test clips.)"""
    from genrekit.audio import load_audio
    from genrekit.backbones.musicnn import MSD_LABELS, WeightsNotFoundError, find_weights

    try:
        find_weights("MSD_musicnn")
    except WeightsNotFoundError as exc:
        pytest.skip(str(exc))
    m = load_model("musicnn")
    right = 0
    clips = ["classical/classical.00097", "metal/metal.00097", "hiphop/hiphop.00002"]
    for rel in clips:
        values = m.features(load_audio(clip_by_stem(shared_data / "gtzan-clips", rel), m.spec.sample_rate)).values
        # 3 s patches, 1 s apart, each with its MFCC statistics row and 10 rows of packed mn04 outputs
        assert values.shape[1:] == (198, 96) and 27 <= len(values) <= 28
        track = m.track_probs(values)
        seg = m.segment_probs(values)
        assert seg.shape == (len(values), 10) and track.shape == (10,)
        right += GENRES[int(np.argmax(track))] == rel.split("/")[0]
        tags = m.tag_probs(values, top_k=5)
        assert len(tags) == 5 and set(tags) <= set(MSD_LABELS)
        assert list(tags.values()) == sorted(tags.values(), reverse=True)
    assert right >= 2


def test_track_windows_cover_the_input():
    assert long_input_windows(29, 29, 14) == [slice(0, 29)] and long_input_windows(5, 29, 14) == [slice(0, 5)]
    w = long_input_windows(60, 29, 14)
    assert [(x.start, x.stop) for x in w] == [(0, 29), (14, 43), (28, 57), (31, 60)]
    w = long_input_windows(57, 29, 14)
    assert [(x.start, x.stop) for x in w] == [(0, 29), (14, 43), (28, 57)]


def test_long_inputs_are_scored_window_by_window(shared_data):
    """Inputs up to the longest training track (29 patches) go to the track head whole, as the
    test split's tracks do; longer ones get the mean of its probabilities over 29-patch windows
    (scripts/cv_long_inputs.py measured why)."""
    m = load_model("musicnn")
    tracks, _ = _tracks(shared_data / "gtzan-musicnn" / "msd_taggram_train.npz")
    t = tracks[0]
    np.testing.assert_array_equal(m._head_probs(t), m.head.probs(t))
    long = np.concatenate(tracks[:3])
    expect = np.mean([m.head.probs(long[w]) for w in long_input_windows(len(long), 29, 14)], axis=0)
    got = m._head_probs(long)
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, m.head.probs(long), atol=1e-3)  # not the whole-input statistics


def test_ovr_confidence_inverts_sklearns_ovr_transform():
    """sklearn's ovr values are votes + s / (3 (|s| + 1)); ovr_confidence gives s back."""
    rng = np.random.default_rng(0)
    votes = rng.integers(0, 10, (50, 10)).astype(float)
    s = rng.normal(0, 5, (50, 10))
    np.testing.assert_allclose(ovr_confidence(votes + s / (3 * (np.abs(s) + 1))), s, rtol=1e-6, atol=1e-8)


def test_ms_mfcc_window_features_give_the_clip_statistics():
    """A clip known by its whole-clip MFCC mean / variance (the stored taggrams + the table) is
    shared out over its patches so that the whole window gives them back exactly; a head that reads
    MFCC statistics refuses rows without them."""
    rng = np.random.default_rng(0)
    tags = rng.uniform(0.01, 0.9, size=(28, 50)).astype(np.float32)
    mean, var = rng.normal(0, 50, 20), rng.uniform(10, 5000, 20)
    rows = np.concatenate([tags, clip_mfcc_rows(28, mean, var, 1293).astype(np.float32)], axis=1)
    f = window_features(rows, "ms_mfcc")
    assert f.shape == (140,)
    np.testing.assert_allclose(f[:100], window_features(tags, "ms"), rtol=1e-6)
    np.testing.assert_allclose(f[100:120], mean, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(f[120:], np.log(var), atol=1e-4)
    np.testing.assert_array_equal(window_features(rows, "ms_lm"), window_features(tags, "ms_lm"))  # tags only
    with pytest.raises(ValueError, match="MFCC statistics"):
        window_features(tags, "ms_mfcc")
    with pytest.raises(ValueError, match="MFCC statistics"):  # an even count cannot be [n, sums, sumsq]
        window_features(rows[:, :-1], "ms_mfcc")
    # another MFCC count: read off the row width (MusicnnMfccSpec.stat_columns), not assumed to be 20
    rows13 = np.concatenate([tags, clip_mfcc_rows(28, mean[:13], var[:13], 1293).astype(np.float32)], axis=1)
    f13 = window_features(rows13, "ms_mfcc")
    assert f13.shape == (126,)
    np.testing.assert_allclose(f13[100:113], mean[:13], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(f13[113:], np.log(var[:13]), atol=1e-4)


def test_evaluate_cli_on_stored_taggrams(shared_data, tmp_path):
    """`genrekit evaluate --model musicnn --data <taggram npz>` reproduces the card's closed-set
    test accuracy (``test_track``) and reports the open-set one, where "other" counts as wrong."""
    import json

    from genrekit.cli.main import main

    npz = shared_data / "gtzan-musicnn" / "msd_taggram_test.npz"
    assert main(["evaluate", "--model", "musicnn", "--data", str(npz), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["test_track"]["accuracy"] == pytest.approx(load_model("musicnn").metrics["test_track"]["accuracy"])
    assert metrics["test_track_open_set"]["accuracy"] <= metrics["test_track"]["accuracy"]
    m = load_model("musicnn")  # the open set on stored taggrams: the musicnn head's own in-set score decides
    tracks, y = _tracks(npz)
    answer = [10 if m.in_set_from_taggram(t) < 0.5 else int(np.argmax(m.track_probs_from_taggram(t))) for t in tracks]
    assert metrics["test_track_open_set"]["accuracy"] == pytest.approx(float(np.mean(np.array(answer) == y)))
