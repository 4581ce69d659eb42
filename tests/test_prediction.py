"""Classifier: typed results, blockwise == whole-signal, bad inputs, timelines, manifest, demo."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

from genrekit.datasets import clip_by_stem, clips_in
from genrekit.errors import AudioError, GenrekitError
from genrekit.prediction import Classifier, Prediction, Segment

from .conftest import tone
from .predict_toy import ToyModel, default_model_available

needs_default = pytest.mark.skipif(not default_model_available(), reason="default model (head or musicnn weights) not available")


@pytest.fixture(scope="module")
def toy() -> Classifier:
    return Classifier(ToyModel())


@pytest.fixture(scope="module")
def default_clf() -> Classifier:
    if not default_model_available():
        pytest.skip("default model not available")
    return Classifier.load(None)


@pytest.fixture(scope="module")
def clip(gtzan_clips):
    return clips_in(gtzan_clips, "rock")[0]


def _seg_probs(p: Prediction) -> np.ndarray:
    return np.array([list(s.probabilities.values()) for s in p.segments])


def test_prediction_types_and_json(toy, clip):
    p = toy.predict(clip)
    assert isinstance(p, Prediction)
    assert p.input == str(clip)
    assert p.genre in toy.labels and p.model == "toy"
    assert math.isclose(sum(p.probabilities.values()), 1.0, abs_tol=1e-4)
    assert p.confidence == max(p.probabilities.values())
    assert 29 < p.duration_s < 31
    assert len(p.segments) > 20 and all(isinstance(s, Segment) for s in p.segments)
    s0, s1 = p.segments[0], p.segments[1]
    assert s0.start_s == 0.0 and s1.start_s > s0.start_s and s0.end_s > s0.start_s
    assert p.segments[-1].end_s <= p.duration_s + 1e-6
    assert p.tags and {"tag", "probability"} <= set(p.tags[0])
    d = p.to_dict()
    line = json.dumps(d)  # plain JSON types only
    assert Prediction.from_dict(json.loads(line)).to_dict() == d
    assert set(d) == {"input", "genre", "confidence", "nearest", "in_set", "style", "labels", "probabilities",
                      "duration_s", "segments", "tags", "model"}
    # a model without an open set: the nearest genre is the answer, no in-set score, no style
    assert d["nearest"] == p.genre and d["in_set"] is None and d["style"] is None
    assert all(s["in_set"] is None for s in d["segments"])
    assert "segments" not in p.to_dict(segments=False)
    assert p.top(3)[0] == (p.genre, p.confidence)
    card = toy.card()
    assert card["name"] == "toy" and card["labels"] == toy.labels and "prediction" in card


def test_blockwise_signal_equals_whole(toy):
    """Blocks on multiples of the segment hop with carried overlap give exactly the whole-signal
    segments (LogMelSpec has an absolute dB floor, so nothing depends on other blocks)."""
    sr = 11025
    rng = np.random.default_rng(1)
    y = np.concatenate([tone(20, sr, 220), rng.standard_normal(sr * 25).astype(np.float32) * 0.3, tone(17.3, sr, 330)])
    whole = Classifier(toy.model, block_seconds=1000).predict_signal(y, sr, "x")
    blocks = Classifier(toy.model, block_seconds=7).predict_signal(y, sr, "x")
    assert [s.start_s for s in whole.segments] == [s.start_s for s in blocks.segments]
    assert [s.end_s for s in whole.segments] == [s.end_s for s in blocks.segments]
    np.testing.assert_allclose(_seg_probs(whole), _seg_probs(blocks), atol=1e-6)
    assert whole.probabilities == blocks.probabilities and whole.duration_s == blocks.duration_s
    assert whole.tags == blocks.tags


def test_blockwise_file_equals_whole(toy, tmp_path):
    sr = 11025  # the toy spec's rate: no resampler, so the streamed blocks equal a whole load
    rng = np.random.default_rng(2)
    y = np.concatenate([tone(15, sr, 200), rng.standard_normal(sr * 20).astype(np.float32) * 0.2])
    f = tmp_path / "long.wav"
    sf.write(f, y, sr, subtype="FLOAT")
    whole = Classifier(toy.model, block_seconds=1000).predict(f)
    blocks = Classifier(toy.model, block_seconds=6).predict(f)
    assert len(whole.segments) == len(blocks.segments) == 34
    np.testing.assert_allclose(_seg_probs(whole), _seg_probs(blocks), atol=1e-5)
    assert whole.genre == blocks.genre


def test_predict_signal_stereo_and_resampling(toy):
    y = tone(4, 44100, 330, channels=2)
    p = toy.predict_signal(y, 44100, "stereo")
    assert p.input == "stereo" and 3.9 < p.duration_s < 4.1
    with pytest.raises(AudioError, match="too short"):
        toy.predict_signal(tone(0.5, 44100), 44100, "short")
    with pytest.raises(AudioError, match="silent"):
        toy.predict_signal(np.zeros(44100 * 3, np.float32), 44100, "quiet")


def _bad_inputs(tmp_path, clip):
    """name -> path of each kind of unusable input (shared with the CLI tests)."""
    out = {}
    (tmp_path / "empty.wav").write_bytes(b"")
    out["empty"] = tmp_path / "empty.wav"
    (tmp_path / "notes.mp3").write_text("these are my notes, not audio\n" * 20)
    out["non-audio"] = tmp_path / "notes.mp3"
    y, sr = sf.read(clip, dtype="float32")
    sf.write(tmp_path / "full.flac", y, sr)
    data = (tmp_path / "full.flac").read_bytes()
    (tmp_path / "truncated.flac").write_bytes(data[: len(data) // 2])
    out["truncated"] = tmp_path / "truncated.flac"
    (tmp_path / "cut.wav").write_bytes(clip.read_bytes()[:3000])  # header + a few ms
    out["truncated-wav"] = tmp_path / "cut.wav"
    sf.write(tmp_path / "silence.wav", np.zeros(sr * 5, np.float32), sr)
    out["silence"] = tmp_path / "silence.wav"
    sf.write(tmp_path / "short.wav", y[: sr // 2], sr)
    out["short"] = tmp_path / "short.wav"
    out["missing"] = tmp_path / "missing.wav"
    (tmp_path / "full.flac").unlink()
    return out


@pytest.mark.parametrize("kind,reason", [
    ("empty", "empty file"), ("non-audio", "not a readable audio file"), ("truncated", "truncated"),
    ("truncated-wav", "too short"), ("silence", "silent"), ("short", "too short"), ("missing", "no such file"),
])
def test_bad_inputs_raise_one_line(toy, clip, tmp_path, kind, reason):
    path = _bad_inputs(tmp_path, clip)[kind]
    with pytest.raises(AudioError) as ei:
        toy.predict(path)
    msg = str(ei.value)
    assert msg.startswith(str(path) + ": ") and reason in msg and "\n" not in msg


def test_predict_many_continues(toy, clip, tmp_path):
    bad = _bad_inputs(tmp_path, clip)
    out = list(toy.predict_many([clip, bad["empty"], bad["missing"], clip]))
    assert [type(r).__name__ for _, r in out] == ["Prediction", "AudioError", "AudioError", "Prediction"]
    assert all(isinstance(r, (Prediction, GenrekitError)) for _, r in out)
    assert out[1][0] == str(bad["empty"])


def test_timeline_png(toy, clip, tmp_path):
    from genrekit.timeline import plot_timeline, safe_stem

    p = toy.predict(clip)
    png = plot_timeline(p, tmp_path / "t" / "tl.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert safe_stem("http://h:1/a/b/My Song.mp3?x=1") == "My Song"  # spaces are safe in a file name
    assert safe_stem("/x/rock.00001.wav") == "rock.00001"


def test_manifest_evaluation(toy, gtzan_clips, tmp_path):
    from genrekit.manifest import evaluate_manifest

    clips = {g: clips_in(gtzan_clips, g)[0] for g in ("blues", "classical", "rock")}
    man = tmp_path / "songs.csv"
    lines = ["input,genre"] + [f"{p},{g}" for g, p in clips.items()] + ["missing.wav,jazz"]
    man.write_text("\n".join(lines) + "\n")
    m = evaluate_manifest(toy.model, man, tmp_path / "out", echo=False)
    assert m["n_scored"] == 3 and m["n_failed"] == 1
    assert str(tmp_path / "missing.wav") in m["failed"][0]["error"]  # relative to the CSV's folder
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert 0 <= saved["test_track"]["accuracy"] <= 1 and 0 <= saved["test_track"]["macro_f1"] <= 1
    assert len(saved["per_song"]) == 3 and all(0 <= s["segment_accuracy"] <= 1 for s in saved["per_song"])
    acc = np.mean([s["correct"] for s in saved["per_song"]])
    assert saved["test_track"]["accuracy"] == pytest.approx(acc)
    for name in ("confusion.png", "confusion.json", "report.md"):
        assert (tmp_path / "out" / name).is_file()
    assert len(list((tmp_path / "out" / "timelines").glob("*.png"))) == 3
    bad = tmp_path / "noheader.csv"
    bad.write_text(f"{clips['rock']},rock\n")
    with pytest.raises(GenrekitError, match="header"):
        evaluate_manifest(toy.model, bad, tmp_path / "out2", echo=False)


# ------------------------------------------------------------------------------ default model


@needs_default
def test_default_model_prediction(default_clf, clip):
    p = default_clf.predict(clip)
    assert p.genre in default_clf.labels and len(default_clf.labels) == 10
    assert p.tags and len(p.tags) == default_clf.top_tags
    assert len(p.segments) == 3 and p.segments[-1].end_s == pytest.approx(p.duration_s)  # 10 s windows over 30 s
    assert p.model


@needs_default
def test_to_dict_is_the_jsonl_line_of_predict(default_clf, clip, capsys):
    """Classifier's defaults (3 tags...) are the CLI's, so the API's record and `genrekit predict
    --format jsonl --segments` (and /api/predict, which returns to_dict()) are the same object;
    without --segments the line is to_dict(segments=False)."""
    from genrekit.cli.main import main

    pred = default_clf.predict(clip)
    assert main(["predict", "--format", "jsonl", "--segments", str(clip)]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    rec = json.loads(json.dumps(pred.to_dict()))
    assert len(rec["tags"]) == 3 and line.keys() == rec.keys()
    assert line == rec
    assert main(["predict", "--format", "jsonl", str(clip)]) == 0
    assert json.loads(capsys.readouterr().out.strip()) == json.loads(json.dumps(pred.to_dict(segments=False)))


def test_default_model_blockwise_matches_whole(default_clf, clip):
    """Taggram route: patches computed per block, head applied once on the whole taggram."""
    whole = default_clf.predict(clip)
    blocks = Classifier(default_clf.model, block_seconds=8).predict(clip)
    assert len(whole.segments) == len(blocks.segments)
    np.testing.assert_allclose(_seg_probs(whole), _seg_probs(blocks), atol=2e-3)
    for g in whole.probabilities:
        assert abs(whole.probabilities[g] - blocks.probabilities[g]) < 2e-3
    assert whole.genre == blocks.genre


@needs_default
def test_demo_command(tmp_path, capsys):
    from genrekit.cli.main import main

    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "timeline PNG:" in out and '"genre"' in out
    assert (tmp_path / "demo.png").is_file() and (tmp_path / "demo.wav").is_file()
    rec = json.loads((tmp_path / "demo.json").read_text())
    assert rec["nearest"] in rec["probabilities"] and rec["genre"] in (rec["nearest"], "other")
    assert 0 <= rec["in_set"] <= 1 and (rec["genre"] == "other") == (rec["in_set"] < _threshold())
    if rec["genre"] == "other":
        assert "'other' is the honest answer" in out


def _threshold() -> float:
    from genrekit.models.default import load_default_model

    return load_default_model().open_threshold


class _RowsModel:
    """The musicnn built-in's spec and routes with a cheap stand-in backbone (the mean log-mel of
    each patch as its 'taggram'), recording the per-patch rows the heads receive."""

    def __new__(cls):
        from genrekit.models.base import load_model
        from genrekit.models.default import MusicnnGenreModel

        class Rows(MusicnnGenreModel):
            def taggram(self, values):
                return self.split_values(values)[0].mean(axis=1)[:, :50].astype(np.float32)

            def segment_probs_from_taggram(self, rows):
                return np.full((len(rows), 10), 0.1, np.float32)

            def track_probs_from_taggram(self, rows):
                self.seen = np.asarray(rows)
                return np.full(10, 0.1, np.float32)

        import dataclasses

        d = load_model("musicnn")
        # the musicnn + MFCC part of the default spec (the AudioSet windows' context has its own test)
        return Rows(d.head, d.labels, dataclasses.replace(d.spec, context_seconds=0.0, context_stride=1))


def test_default_spec_rows_blockwise_match_whole(shared_data):
    """Block-wise prediction with the musicnn built-in's spec (read at 22.05 kHz, musicnn patches at 16 kHz,
    MFCC slot statistics) hands the heads the per-patch rows of one whole-signal pass: the same
    patches (blocks are cut on whole samples of both rates), and MFCC statistics that differ only
    by where each block's 23 ms frames fall (at most one frame per slot; a patch whose slot would
    run to a block's end waits for the next block, so no frame is counted twice). Steady
    tones over a noise floor keep every mel bin within the 80 dB floor, which is per block."""
    from genrekit.models.default import window_features

    model = _RowsModel()
    rng = np.random.default_rng(0)
    n = int(23.3 * 22050)
    t = np.arange(n) / 22050
    y = sum(np.sin(2 * np.pi * f * (1 + 0.002 * np.sin(2 * np.pi * 5 * t)) * t) * (1 + 0.5 * np.sin(2 * np.pi * t / (k + 2)))
            for k, f in enumerate((110.0, 220.0, 330.0, 554.4, 880.0, 1318.5, 2637.0)))
    y = (0.05 * y + 0.01 * rng.standard_normal(n)).astype(np.float32)  # harmonics over a noise floor
    Classifier(model, block_seconds=1000, top_tags=0).predict_signal(y, 22050, "x")
    whole = model.seen
    Classifier(model, block_seconds=6, top_tags=0).predict_signal(y, 22050, "x")  # 4.88 s blocks
    blocks = model.seen
    assert whole.shape == blocks.shape == (21, 91)
    assert whole[:, 50].sum() == 1 + n // 512  # every MFCC frame in exactly one slot
    assert np.abs(whole[:, 50] - blocks[:, 50]).max() <= 1 and abs(whole[:, 50].sum() - blocks[:, 50].sum()) <= 4
    np.testing.assert_allclose(blocks[:, :50], whole[:, :50], atol=2e-4)  # soxr per block: edges excluded
    fw, fb = window_features(whole, "ms_mfcc"), window_features(blocks, "ms_mfcc")
    sigma = _gtzan_mfcc_spread(shared_data)  # the features' spread over GTZAN's 1000 clips
    assert np.abs(fb[100:] - fw[100:]).max() > 0  # the frame grids do differ ...
    assert np.max(np.abs(fb[100:] - fw[100:]) / sigma) < 0.01  # ... by under 1% of a feature's spread


def test_audioset_rows_blockwise_match_whole(shared_data):
    """With the musicnn built-in's AudioSet part, blocks are cut on the 10-patch window grid and keep
    each window's 10 s: block-wise prediction gives every patch the mn04 outputs that one
    whole-signal pass gives (same windows, same rows up to soxr's block edges)."""
    from genrekit.audio import load_audio
    from genrekit.models import audioset as AS
    from genrekit.models.base import load_model

    d = load_model("musicnn")
    assert d.audioset is not None
    seen = {}

    class Rows(type(d)):
        def track_probs_from_taggram(self, rows):
            seen["rows"] = np.asarray(rows)
            return super().track_probs_from_taggram(rows)

    m = Rows(d.head, d.labels, d.spec, segment_head=d.segment_head, head_labels=d.head_labels, open_head=d.open_head,
             audioset=d.audioset, audioset_head=d.audioset_head, open_set={"fused_threshold": 0.5, "track_threshold": 0.5},
             track_window=d.track_window, track_window_hop=d.track_window_hop)
    y = load_audio(clips_in(shared_data / "gtzan-clips", "disco")[0], 22050)
    y = np.concatenate([y, y[: len(y) // 2]])  # ~45 s: several blocks of ~10 s
    Classifier(m, block_seconds=1000, top_tags=0).predict_signal(y, 22050, "x")
    whole = seen["rows"][:, m._audioset_start :]
    Classifier(m, block_seconds=6, top_tags=0).predict_signal(y, 22050, "x")  # rounded up to the 10-patch grid
    blocks = seen["rows"][:, m._audioset_start :]
    assert whole.shape == blocks.shape and whole.shape[1] == AS.ROW
    ran_w, ran_b = ~np.isnan(whole).any(axis=1), ~np.isnan(blocks).any(axis=1)
    assert ran_w.tolist() == ran_b.tolist() and np.flatnonzero(ran_w).tolist() == list(range(0, len(whole), 10))
    np.testing.assert_allclose(blocks[ran_b], whole[ran_w], atol=2e-2)


def _gtzan_mfcc_spread(shared_data) -> np.ndarray:
    """Standard deviation of the ``ms_mfcc`` MFCC columns (mean, log variance) over the clips of
    GTZAN's features_30_sec.csv."""
    from genrekit.datasets import read_clip_mfcc_table

    table = read_clip_mfcc_table(shared_data / "gtzan-features" / "features_30_sec.csv")
    f = np.array([np.concatenate([m, np.log(np.maximum(v, 1e-8))]) for m, v, _ in table.values()])
    return f.std(0)


# ------------------------------------------------------------------ models trained on tables


def table_model(labels: tuple[str, ...] = ("blues", "classical", "hiphop", "rock_metal_hardrock"),
                n_features: int = 26):
    """A tiny untrained FNN saved as `genrekit train` saves a table-only model (spec kind "table"):
    what training on notebook arrays or a features CSV with --columns all gives, minus the training."""
    from genrekit.models.notebook import TorchGenreModel, build_model

    config = {"arch": "fnn", "input_shape": [n_features], "n_classes": len(labels), "hidden": [4], "dropout": 0.0}
    spec = {"kind": "table", "source": "test", "feature_names": [f"x{i}" for i in range(n_features)]}
    return TorchGenreModel(build_model(config), config, list(labels), spec, np.zeros(n_features, np.float32),
                           np.ones(n_features, np.float32))


def test_table_model_cannot_become_a_classifier(tmp_path):
    """Up front and in one line, instead of an AttributeError for every input."""
    path = table_model().save(tmp_path / "run" / "model.safetensors")
    for ref in (path, path.parent):  # the file, or the training folder holding it
        with pytest.raises(GenrekitError) as ei:
            Classifier.load(ref)
        assert str(ei.value) == f"{ref}: this model was trained on a precomputed table and cannot read audio"
    with pytest.raises(GenrekitError, match="precomputed table"):
        Classifier(table_model())


def test_evaluate_table_model_on_manifest_is_one_line(tmp_path, clip, capsys):
    from genrekit.cli.main import main

    path = table_model().save(tmp_path / "table.safetensors")
    man = tmp_path / "songs.csv"
    man.write_text(f"input,genre\n{clip},rock_metal_hardrock\n")
    assert main(["evaluate", "--model", str(path), "--manifest", str(man), "--out", str(tmp_path / "ev")]) == 1
    assert capsys.readouterr().err == (f"genrekit: error: {path}: this model was trained on a precomputed table "
                                       "and cannot read audio\n")


def test_evaluate_names_scores_by_the_split_scored(shared_data, tmp_path, capsys):
    from genrekit.cli.main import main

    path = table_model().save(tmp_path / "table.safetensors")
    out = tmp_path / "ev"
    assert main(["evaluate", "--model", str(path), "--data", str(shared_data / "seed-mfcc"), "--split", "val",
                 "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out.splitlines()
    m = json.loads((out / "metrics.json").read_text())
    assert m["split"] == "val" and m["val"]["n"] == 800 and "test" not in m
    assert (out / "val_metrics.json").is_file() and not (out / "test_metrics.json").exists()
    assert printed[-1].startswith("val ") and not any(line.startswith("test") for line in printed)


# ------------------------------------------------------------------ manifest rows and exit codes


@pytest.fixture()
def toy_loaded(monkeypatch):
    """`evaluate --model default` answers with the toy model (Classifier.load calls load_model)."""
    import genrekit.prediction as prediction

    monkeypatch.setattr(prediction, "load_model", lambda ref=None: ToyModel())


def test_manifest_genres_match_labels_and_unknown_ones_are_named(toy, gtzan_clips, tmp_path, capsys):
    from genrekit.manifest import evaluate_manifest

    rock, metal = (clips_in(gtzan_clips, g)[0] for g in ("rock", "metal"))
    man = tmp_path / "songs.csv"
    man.write_text(f"input,genre\n{metal},Metal\n{rock}, Rock \n{rock},polka\n{metal},\n{rock},polka\n")
    m = evaluate_manifest(toy.model, man, tmp_path / "out", timelines=False)
    err = capsys.readouterr().err.splitlines()
    assert [e["genre"] for e in m["per_song"]] == ["metal", "rock", "polka", "polka"]  # the model's spelling
    assert m["n_scored"] == 4 and m["n_failed"] == 1 and m["unknown_genres"] == {"polka": 2}
    assert m["failed"][0]["error"] == f"{metal}: line 5 of songs.csv gives no genre"
    assert f"[4/5] genrekit: error: {metal}: line 5 of songs.csv gives no genre" in err
    warnings = [line for line in err if line.startswith("genrekit: warning:")]
    assert len(warnings) == 1 and "'polka' (2 rows)" in warnings[0] and "metal" in warnings[0]
    assert not any(e["correct"] for e in m["per_song"] if e["genre"] == "polka")  # still scored, as wrong
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Genres the model does not know (always scored as wrong): 'polka' (2 rows)." in report


def test_evaluate_manifest_exit_code(toy_loaded, gtzan_clips, tmp_path, capsys):
    from genrekit.cli.main import main

    rock = clips_in(gtzan_clips, "rock")[0]
    good, bad = tmp_path / "good.csv", tmp_path / "allbad.csv"
    good.write_text(f"input,genre\n{rock},rock\n")
    bad.write_text("input,genre\nmissing1.wav,rock\nmissing2.wav,jazz\n")
    assert main(["evaluate", "--manifest", str(good), "--out", str(tmp_path / "a")]) == 0
    assert main(["evaluate", "--manifest", str(bad), "--out", str(tmp_path / "b")]) == 1
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["n_failed"] == 2  # still written
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(f"input,genre\n{rock},rock\nmissing.wav,rock\n")
    assert main(["evaluate", "--manifest", str(mixed), "--out", str(tmp_path / "c")]) == 1
    assert json.loads((tmp_path / "c" / "metrics.json").read_text())["n_scored"] == 1
    capsys.readouterr()
    assert main(["evaluate", "--manifest", str(good), "--data", str(tmp_path), "--out", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"genrekit: error: {tmp_path}: --data cannot be used with --manifest") and err.count("\n") == 1
    assert not (tmp_path / "d").exists()


def test_manifest_hides_decoder_chatter(tmp_path):
    """libmpg123 prints 'Illegal Audio-MPEG-Header' notes straight to fd 2 for a text file named
    .mp3; evaluate must show only its own line. Run in a child process to see the real fd 2."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "notes.mp3").write_text("these are my notes, not audio\n" * 200)
    (tmp_path / "songs.csv").write_text("input,genre\nnotes.mp3,rock\n")
    script = ("import sys; from tests.predict_toy import ToyModel; from genrekit.manifest import evaluate_manifest; "
              "evaluate_manifest(ToyModel(), sys.argv[1], sys.argv[2], timelines=False)")

    def stderr(debug: bool) -> str:
        env = {k: v for k, v in os.environ.items() if k != "GENREKIT_DEBUG"} | ({"GENREKIT_DEBUG": "1"} if debug else {})
        r = subprocess.run([sys.executable, "-c", script, str(tmp_path / "songs.csv"), str(tmp_path / "out")],
                           cwd=repo, capture_output=True, text=True, timeout=120, env=env)
        assert r.returncode == 0, r.stderr
        return r.stderr

    if "Illegal Audio-MPEG-Header" not in stderr(debug=True):
        pytest.skip("this libsndfile/libmpg123 build prints no notes for a non-audio .mp3")
    err = stderr(debug=False)
    assert "Illegal Audio-MPEG-Header" not in err
    assert f"[1/1] genrekit: error: {tmp_path / 'notes.mp3'}: " in err
    # ... and what the decoder said is in the song's record instead
    failed = json.loads((tmp_path / "out" / "metrics.json").read_text())["failed"]
    assert "(decoder: " in failed[0]["error"] and "Illegal Audio-MPEG-Header" in failed[0]["error"]


def _chatty_mp3(tmp_path):
    """A text file named .mp3 (libmpg123 prints notes on fd 2 about it), or skip when this build is quiet."""
    import os
    import subprocess
    import sys

    bad = tmp_path / "notes.mp3"
    bad.write_text("these are my notes, not audio\n" * 200)
    probe = subprocess.run([sys.executable, "-c", f"import soundfile as sf\ntry: sf.read({str(bad)!r})\nexcept Exception: pass"],
                           capture_output=True, text=True, timeout=60, env=dict(os.environ))
    if "Illegal Audio-MPEG-Header" not in probe.stderr:
        pytest.skip("this libsndfile/libmpg123 build prints no notes for a non-audio .mp3")
    return bad


def test_predict_puts_decoder_chatter_into_the_record_not_the_terminal(tmp_path):
    """predict --format jsonl in a child process (the real fd 2): stderr holds genrekit's one line,
    the record's error holds what libmpg123 said."""
    import subprocess
    import sys
    from pathlib import Path

    bad = _chatty_mp3(tmp_path)
    repo = Path(__file__).resolve().parents[1]
    script = ("import sys; import genrekit.prediction as p; from tests.predict_toy import ToyModel; "
              "p.load_model = lambda ref=None: ToyModel(); from genrekit.cli.main import main; "
              "sys.exit(main(['predict', '--format', 'jsonl', sys.argv[1]]))")
    r = subprocess.run([sys.executable, "-c", script, str(bad)], cwd=repo, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "Illegal Audio-MPEG-Header" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"genrekit: error: {bad}: ")
    rec = json.loads(r.stdout)
    assert rec["input"] == str(bad) and "(decoder: " in rec["error"] and "Illegal Audio-MPEG-Header" in rec["error"]


def test_other_answer_confidence_is_the_certainty_of_other():
    """For "other" the record's confidence is 1 - in_set (segments: their own in_set), not the
    nearest genre's probability; the closed-set record gives the nearest genre's back."""
    from genrekit.prediction import closed_set_record

    clf = Classifier(ToyModel(), top_tags=0)
    labels = clf.labels  # blues classical jazz metal rock
    track = np.array([0.1, 0.05, 0.6, 0.15, 0.1])
    probs = np.array([[0.1, 0.1, 0.7, 0.05, 0.05], [0.05, 0.05, 0.1, 0.2, 0.6]])
    pred = clf._make("x.wav", track, probs, np.array([0.0, 1.0]), np.array([2.0, 3.0]), 3.0, None,
                     (0.12, np.array([0.3, 0.9]), "electronic, dance", 0.5))
    assert pred.genre == "other" and pred.nearest == "jazz"
    assert pred.confidence == pytest.approx(0.88) and pred.nearest_probability == pytest.approx(0.6)
    assert [s.genre for s in pred.segments] == ["other", "rock"]
    assert [s.confidence for s in pred.segments] == pytest.approx([0.7, 0.6])
    rec = pred.to_dict()
    assert rec["confidence"] == pytest.approx(0.88) and rec["probabilities"]["jazz"] == pytest.approx(0.6)
    closed = closed_set_record(rec)
    assert closed["genre"] == "jazz" and closed["confidence"] == pytest.approx(0.6)
    assert closed["segments"][0]["genre"] == "jazz" and closed["segments"][0]["confidence"] == pytest.approx(0.7)
    inside = clf._make("y.wav", track, probs, np.array([0.0, 1.0]), np.array([2.0, 3.0]), 3.0, None,
                       (0.8, np.array([0.9, 0.9]), None, 0.5))
    assert inside.genre == "jazz" and inside.confidence == pytest.approx(0.6)  # a genre: its own probability
    assert labels[int(np.argmax(track))] == "jazz"


def test_labels_follow_the_hugging_face_convention(toy, clip):
    """``[{"label", "score"}]`` best first, ``top_k`` as in transformers' audio-classification
    pipeline; the label-ordered ``probabilities`` dict stays as it was."""
    p = toy.predict(clip)
    assert p.labels(2) == [{"label": g, "score": s} for g, s in p.top(2)]
    everything = p.labels()
    assert len(everything) == len(toy.labels) and everything[0] == {"label": p.genre, "score": p.confidence}
    assert [x["score"] for x in everything] == sorted(p.probabilities.values(), reverse=True)
    assert p.to_dict()["labels"] == everything and list(p.probabilities) == toy.labels


def test_progress_reports_seconds_inside_a_long_input(toy, tmp_path):
    """predict(progress=...) reports the seconds classified so far for inputs longer than a block,
    rising and never past the input's length; short inputs never call it; and the answer is the
    same as without a callback."""
    f = tmp_path / "long.wav"
    sf.write(f, tone(40.0, sr=11025), 11025)
    clf = Classifier(toy.model, block_seconds=6)
    calls: list[tuple[float, float]] = []
    p = clf.predict(f, progress=lambda done, total: calls.append((done, total)))
    assert len(calls) >= 4
    done = [c[0] for c in calls]
    assert done == sorted(done) and 0 < done[0] and done[-1] < 40.0
    assert all(abs(total - 40.0) < 0.01 for _, total in calls)
    assert p.to_dict() == clf.predict(f).to_dict()
    short = []
    Classifier(toy.model).predict(f, progress=lambda *a: short.append(a))  # 40 s in one 300 s block
    assert short == []


def test_a_failing_progress_callback_costs_nothing(toy, tmp_path):
    f = tmp_path / "long.wav"
    sf.write(f, tone(20.0, sr=11025), 11025)

    def broken(done, total):
        raise OSError("terminal gone")

    clf = Classifier(toy.model, block_seconds=4)
    assert clf.predict(f, progress=broken).to_dict() == clf.predict(f).to_dict()


# ------------------------------------------------------------------ the open set ("other")

_OUTSIDE = "real-songs/other/electronic"  # music outside GTZAN's ten genres


def _outside_song(shared_data):
    songs = sorted((shared_data / _OUTSIDE).iterdir())
    if not songs:
        pytest.skip(f"no songs in {_OUTSIDE}")
    return songs[0]


@needs_default
def test_open_set_answer_and_closed_set_switch(shared_data):
    """The open set answers "other" exactly when the in-set score is under the model's threshold,
    for the track and for each segment; ``open_set=False`` gives the nearest genre every time,
    with the same scores; the record carries nearest, in_set and style either way."""
    from genrekit.prediction import OTHER, closed_set_record

    song = _outside_song(shared_data)
    clf = Classifier.load()
    t = clf.model.open_threshold
    assert t == 0.5 and clf.answers_other
    p = clf.predict(song)
    assert p.nearest in clf.labels and 0 <= p.in_set <= 1 and p.style
    assert (p.genre == OTHER) == (p.in_set < t) and p.genre in (OTHER, p.nearest)
    assert p.nearest_probability == p.probabilities[p.nearest] == max(p.probabilities.values())
    # confidence: the certainty of the answer given; for "other" that is 1 - in_set
    assert p.confidence == pytest.approx(1 - p.in_set if p.genre == OTHER else p.nearest_probability, abs=1e-6)
    for s in p.segments:
        assert 0 <= s.in_set <= 1
        top = max(s.probabilities, key=s.probabilities.get)
        assert s.genre == (OTHER if s.in_set < t else top)
        assert s.confidence == pytest.approx(1 - s.in_set if s.genre == OTHER else s.probabilities[top], abs=1e-6)
    closed = Classifier.load(open_set=False)
    assert not closed.answers_other
    c = closed.predict(song)
    assert c.genre == p.nearest and c.in_set == p.in_set and OTHER not in {s.genre for s in c.segments}
    assert closed_set_record(p.to_dict()) == c.to_dict()  # the API's switch gives the same record


@needs_default
def test_cli_closed_set_and_other_line(shared_data, capsys):
    from genrekit.cli.main import main

    song = _outside_song(shared_data)
    assert main(["predict", "--format", "jsonl", "--no-progress", "--closed-set", str(song)]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["genre"] == rec["nearest"] != "other" and rec["in_set"] is not None
    assert main(["predict", "--no-progress", str(song)]) == 0
    out = capsys.readouterr().out
    if rec["in_set"] < 0.5:  # the open-set answer, said plainly
        assert " other " in out and "not one of the 10 genres this model knows" in out and rec["style"] in out
    assert main(["predict", "--format", "csv", "--no-progress", str(song)]) == 0
    import csv
    import io

    cols = next(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert cols["nearest"] == rec["nearest"] and float(cols["in_set"]) == pytest.approx(rec["in_set"], abs=1e-4)


@needs_default
def test_manifest_other_rows_are_right_when_the_model_says_other(shared_data, tmp_path):
    """A manifest row whose genre is "other" (any case) counts as right exactly when the model
    answers other; it is not an unknown genre; closed-set scores are reported beside."""
    from genrekit.manifest import evaluate_manifest

    song = _outside_song(shared_data)
    inside = clip_by_stem(shared_data / "gtzan-clips", "jazz/jazz.00000")
    csv = tmp_path / "songs.csv"
    csv.write_text(f"input,genre\n{song},Other\n{inside},jazz\n")
    m = evaluate_manifest(None, csv, tmp_path / "out", echo=False, timelines=False)
    rows = {e["input"]: e for e in m["per_song"]}
    assert m["unknown_genres"] == {} and rows[str(song)]["genre"] == "other"
    assert rows[str(song)]["correct"] == (rows[str(song)]["predicted"] == "other")
    # a style outside the model's genres (as in real-songs/other.csv) is scored as "other" too
    csv.write_text(f"input,genre\n{song},electronic\n")
    m2 = evaluate_manifest(None, csv, tmp_path / "out2", echo=False, timelines=False)
    e = m2["per_song"][0]
    assert m2["unknown_genres"] == {"electronic": 1} and e["genre"] == "other" and "scored as 'other'" in e["note"]
    assert e["correct"] == rows[str(song)]["correct"]
    assert m["answered_other"] == sum(e["predicted"] == "other" for e in m["per_song"])
    assert m["test_track_closed_set"]["n"] == 1  # only the song inside the ten


# ------------------------------------------------------------ issue 21: honest samples, no NaN out


def test_truncated_file_same_error_whatever_was_decoded_before(toy, clip, tmp_path):
    """``head -c 1000 good.mp3``: about 50 ms of audio. Its answer (too short) must not depend on
    what the process decoded before it (the old block reader handed on leftover memory)."""
    from .hostile_media import mp3_file

    good = mp3_file(tmp_path / "good.mp3", 30.0)
    cut = tmp_path / "t.mp3"
    cut.write_bytes(good.read_bytes()[:1000])
    messages = []
    for before in (None, clip, good, None, clip):
        if before is not None:
            toy.predict(before)
        with pytest.raises(AudioError) as ei:
            toy.predict(cut)
        messages.append(str(ei.value))
    assert len(set(messages)) == 1 and "too short: 0.05 s" in messages[0], messages


class _NanModel(ToyModel):
    """A model whose answer is NaN (a damaged head, a bad feature): it must never become a record."""

    def segment_probs(self, values: np.ndarray) -> np.ndarray:
        p = super().segment_probs(values)
        p[:, 0] = np.nan
        return p


def test_nan_never_leaves_the_model(clip, tmp_path):
    clf = Classifier(_NanModel())
    with pytest.raises(AudioError, match="not a number") as ei:
        clf.predict(clip)
    assert str(ei.value).startswith(f"{clip}: ")
    with pytest.raises(AudioError, match="not a number"):
        clf.predict_signal(tone(4.0, 11025), 11025, "signal")
    out = list(clf.predict_many([clip]))
    assert isinstance(out[0][1], AudioError)


def test_min_confidence_never_passes_nan():
    from genrekit.library.answers import Answer, Rules, decide

    for rules in (Rules(), Rules(min_confidence=0.99)):
        assert decide(Answer("t.mp3", "rock", math.nan), rules) is not None
        assert decide(Answer("t.mp3", "rock", math.inf), rules) is not None
    assert decide(Answer("x.mp3", "rock", 0.995), Rules(min_confidence=0.99)) is None
