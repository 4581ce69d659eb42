"""The default model (``models.audioset_head``): mn04 alone on 10 s windows, one head, the zero-shot
vote. Its committed file, its window rule, block-wise reading, the formula it computes, and one
real clip end to end on both engines."""

from __future__ import annotations

import numpy as np
import pytest

from genrekit.datasets import clips_in
from genrekit.features import spec_from_dict
from genrekit.models import audioset as AS
from genrekit.models.audioset_head import FORMAT, AudioSetGenreModel, AudioSetWindowSpec
from genrekit.models.base import BUILTIN_MODELS, load_model
from genrekit.models.default import GENRES
from genrekit.models.modelfile import read_model_meta
from genrekit.prediction import Classifier


def test_default_file_is_small_described_and_made_by_the_command():
    path = BUILTIN_MODELS["default"]
    assert path.stat().st_size < 500_000
    meta = read_model_meta(path)
    assert meta["format"] == FORMAT and meta["labels"] == GENRES and meta["track_head_labels"] == [*GENRES, "other"]
    spec = meta["feature_spec"]
    assert spec == AudioSetWindowSpec().to_dict() and spec["sample_rate"] == 22050 and spec["window_seconds"] == 10.0
    assert "MIT" in meta["backbones"]["audioset"] and "musicnn" not in meta["backbones"]
    assert meta["audioset"] == {"backbone": "efficientat_mn04", "feature": "all", "zero_shot_weight": 1.0}
    assert all(0 < meta["open_set"][f"{k}_threshold"] < 1 for k in ("fused", "segment"))
    t = meta["training"]
    assert t["script"] == "genrekit train --model head" and t["driver"] == "scripts/train_default_model.py"
    assert t["config"]["backbone"] == "mn04" and t["config"]["class_weight"] == "none"
    assert t["data"]["always_in_fit"] == {"gtzan": 124} and t["data"]["songs_outside_labels"] == 98
    assert len(t["fit_files"]) == 367
    m = meta["metrics"]
    assert m["cv"]["n"] == 145 and "leave one group out (56 folds)" in m["cv_protocol"]
    parts = m["cv_components"]
    assert parts["the model"]["accuracy"] == m["cv"]["accuracy"] and parts["the model"]["other_caught"] == m["other_caught"]
    # the trained model must beat its backbone's trained head alone under the same protocol
    assert m["cv"]["accuracy"] > parts["AudioSet (mn04) head alone"]["accuracy"]
    assert m["test_audio_clips"]["n"] == 14


def test_windows_cover_the_signal_and_refuse_nothing_short():
    s = AudioSetWindowSpec(sample_rate=100, window_seconds=10.0, hop_seconds=10.0, min_window_seconds=2.0)
    for n, want in ((3000, [(0, 1000), (1000, 2000), (2000, 3000)]),
                    (3150, [(0, 1000), (1000, 2000), (2000, 3150)]),  # a tail under 2 s joins the last window
                    (3250, [(0, 1000), (1000, 2000), (2000, 3000), (3000, 3250)]),
                    (150, [(0, 150)])):  # a short signal is one window
        starts, ends = s.windows(n)
        assert list(zip(starts.tolist(), ends.tolist(), strict=True)) == want, n
    assert spec_from_dict(AudioSetWindowSpec().to_dict()) == AudioSetWindowSpec()


def _head_model(zero_shot_weight: float = 1.0) -> AudioSetGenreModel:
    rng = np.random.default_rng(0)
    head = {"w1": rng.normal(0, 0.05, (11, AS.ROW)).astype(np.float32), "b1": rng.normal(0, 1, 11).astype(np.float32),
            "mu": rng.normal(0, 1, AS.ROW).astype(np.float32), "sigma": np.ones(AS.ROW, np.float32)}
    return AudioSetGenreModel(head, GENRES, AudioSetWindowSpec(), head_labels=[*GENRES, "other"],
                              zero_shot_weight=zero_shot_weight, open_set={"fused_threshold": 0.3, "segment_threshold": 0.4})


def test_track_and_segments_are_the_formula():
    """Track: the head on the mean row, mn04's zero-shot vote on the ten (p(other) untouched), the
    closed set renormalised; in-set: 1 - p(other) shifted so that the stored threshold reads 0.5;
    a segment: the same on its window's row alone."""
    from genrekit.heads.logistic import probs, softmax
    from genrekit.heads.openset import recalibrate

    m = _head_model()
    rows = np.random.default_rng(1).normal(0, 2, (4, AS.ROW)).astype(np.float32)
    mean = rows.astype(np.float64).mean(0)
    q = probs(m.head, mean)
    zs = AS.zero_shot_logp(mean, GENRES)
    closed = softmax(np.log(q[:10]) + zs) * (1 - q[10])
    np.testing.assert_allclose(m.track_probs_from_taggram(rows), closed / closed.sum(), atol=1e-5)
    assert m.in_set_from_taggram(rows) == pytest.approx(recalibrate(1 - q[10], 0.3))
    seg = m.segment_probs_from_taggram(rows)
    np.testing.assert_allclose(seg[2], m.track_probs_from_taggram(rows[2:3]), atol=1e-6)
    assert m.segment_in_set_from_taggram(rows)[1] == pytest.approx(recalibrate(1 - probs(m.head, rows[1].astype(np.float64))[10], 0.4), abs=1e-6)
    assert m.probe_outputs() == 10
    no_vote = _head_model(0.0)
    np.testing.assert_allclose(no_vote.track_probs_from_taggram(rows), q[:10] / q[:10].sum(), atol=1e-5)


def test_tags_leave_out_the_roots_every_song_has():
    m = _head_model()
    tags = m.audioset_tags(np.zeros((2, AS.ROW), np.float32))
    assert len(tags) == len(AS.TAG_CLASSES) and "Music" not in tags and "Musical instrument" not in tags
    assert "Guitar" in tags and "Salsa music" in tags


def test_blockwise_rows_equal_one_pass(shared_data):
    """Each window is resampled on its own, so a long file read in blocks gives exactly the rows of
    one pass: the same windows, the last running to the end."""
    from genrekit.audio import load_audio

    d = load_model(None)
    seen = {}

    class Rows(AudioSetGenreModel):
        def track_probs_from_taggram(self, rows):
            seen["rows"] = np.asarray(rows)
            return super().track_probs_from_taggram(rows)

    m = Rows(d.head, d.labels, d.spec, head_labels=d.head_labels, zero_shot_weight=d.zero_shot_weight,
             open_set={"fused_threshold": 0.4, "segment_threshold": 0.45})
    y = load_audio(clips_in(shared_data / "gtzan-clips", "disco")[0], 22050)
    y = np.concatenate([y, y[: len(y) // 2 + 22050]])  # ~46 s
    whole = Classifier(m, block_seconds=1000, top_tags=0).predict_signal(y, 22050, "x")
    rows_whole = seen["rows"]
    parts = Classifier(m, block_seconds=6, top_tags=0).predict_signal(y, 22050, "x")  # one 10 s window per block
    assert rows_whole.shape == seen["rows"].shape == (5, AS.ROW)
    np.testing.assert_array_equal(seen["rows"], rows_whole)
    assert [(s.start_s, s.end_s, s.genre, s.in_set) for s in parts.segments] == \
        [(s.start_s, s.end_s, s.genre, s.in_set) for s in whole.segments]
    assert parts.in_set == whole.in_set and parts.genre == whole.genre
    assert whole.segments[-1].end_s == pytest.approx(len(y) / 22050, abs=1e-3)


def test_default_on_a_clip_both_engines(shared_data, monkeypatch):
    """A real clip: the genre, three 10 s segments, AudioSet tags; ONNX Runtime and torch agree."""
    pytest.importorskip("torch")
    clip = clips_in(shared_data / "gtzan-clips", "metal")[0]
    out = {}
    for engine in ("onnx", "torch"):
        monkeypatch.setenv("GENREKIT_ENGINE", engine)  # the runner is memoised per engine
        p = Classifier(load_model(None)).predict(clip)
        out[engine] = p
    a, b = out["onnx"], out["torch"]
    assert a.genre == b.genre == "metal" and len(a.segments) == 3
    assert a.tags and all(t["tag"] not in ("Music", "Musical instrument") for t in a.tags)
    for g in GENRES:
        assert abs(a.probabilities[g] - b.probabilities[g]) < 1e-3


def test_tag_vocabulary_follows_the_model(shared_data, capsys):
    """No --tags: the model's own vocabulary; --tags msd on the default: one line naming the way out."""
    from genrekit.cli.main import main
    from genrekit.errors import GenrekitError
    from genrekit.prediction import tag_vocabulary

    d, m = load_model(None), load_model("musicnn")
    assert tag_vocabulary(d, None, "default") == "audioset" and tag_vocabulary(m, None, "musicnn") == "msd"
    assert tag_vocabulary(m, "audioset", "musicnn") == "audioset"
    with pytest.raises(GenrekitError, match="--model musicnn"):
        tag_vocabulary(d, "msd", "default")
    clip = clips_in(shared_data / "gtzan-clips", "jazz")[0]
    assert main(["predict", "--tags", "msd", str(clip)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no MSD tags" in err[0]


@pytest.mark.parametrize("damage", [
    ("feature_spec", "hop_seconds", 0), ("feature_spec", "hop_seconds", -5), ("feature_spec", "backbone", "mn10"),
    ("audioset", None, "x"), ("open_set", None, [1]), ("audioset", "zero_shot_weight", float("nan")),
    ("open_set", "fused_threshold", 1.5), ("labels", None, GENRES[:9]), ("sigma", None, 0.0), ("w1", None, float("nan")),
])
def test_a_damaged_default_file_is_refused_in_one_line(tmp_path, damage):
    """A hand-edited or damaged file is refused when it loads, naming the file, instead of loading
    as healthy and then blaming every input (or silently dropping "other" or the vote)."""
    import torch

    from genrekit.errors import ModelFileError
    from genrekit.models.modelfile import read_model_file, save_model_file

    tensors, meta = read_model_file(BUILTIN_MODELS["default"], numpy=True)
    key, sub, value = damage
    if key in ("sigma", "w1"):
        tensors[f"audioset.m0.{key}"] = np.full_like(tensors[f"audioset.m0.{key}"], value)
    elif sub is None:
        meta[key] = value
    else:
        meta[key] = dict(meta[key], **{sub: value})
    bad = tmp_path / "bad.safetensors"
    save_model_file(bad, {k: torch.from_numpy(np.array(v, np.float32)) for k, v in tensors.items()}, meta)
    with pytest.raises(ModelFileError, match="bad.safetensors: damaged model file") as err:
        load_model(bad)
    assert "\n" not in str(err.value)
