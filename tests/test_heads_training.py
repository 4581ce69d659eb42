"""`genrekit train --model head` (genrekit.heads.training): your own genres on the pretrained backbones.

The first test trains on real songs through the CLI (real extraction, about a minute); the others
replace the extractor by synthetic rows, so the cache, resume and input handling are checked in
seconds.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from genrekit.cli.main import main
from genrekit.heads import training as T

STYLES = ("classical", "hiphop", "metal", "reggae")


def _real_songs(shared_data: Path) -> dict[str, list[dict[str, str]]]:
    rows = list(csv.DictReader((shared_data / "real-songs" / "labels.csv").open(encoding="utf-8")))
    return {s: [r for r in rows if r["genre"] == s] for s in STYLES}


def test_head_on_real_songs_predicts_held_out_sources(shared_data: Path, tmp_path: Path, capsys) -> None:
    """4 styles x 5 songs (symlinked into <label>/<source>/) -> held-out songs of sources the head
    never saw, answered above chance (0.25) by `genrekit predict`; `info` shows the CV."""
    if not (shared_data / "real-songs" / "labels.csv").is_file():
        pytest.skip("no real songs")
    root, held = tmp_path / "songs", []
    for style, rows in _real_songs(shared_data).items():
        sources = sorted({r["source_repo"] for r in rows})
        held_sources = set(sources[-2:])  # two sources kept out of training entirely
        train = [r for r in rows if r["source_repo"] not in held_sources][:5]
        held += [(style, r) for r in rows if r["source_repo"] in held_sources][:2]
        for r in train:
            d = root / style / re.sub(r"[^A-Za-z0-9]+", "-", r["source_repo"])
            d.mkdir(parents=True, exist_ok=True)
            (d / Path(r["file"]).name).symlink_to(shared_data / "real-songs" / r["file"])
    out = tmp_path / "head"
    assert main(["train", "--model", "head", "--data", str(root), "--out", str(out), "--quiet"]) == 0
    meta = json.loads(json.dumps(T_meta(out)))
    assert meta["labels"] == list(STYLES)
    assert meta["training"]["data"]["per_label"] == {s: 5 for s in STYLES}
    cv = meta["metrics"]["cv"]
    assert cv["n"] == 20 and np.asarray(cv["confusion"]).sum() == 20
    capsys.readouterr()
    inputs = [str(shared_data / "real-songs" / r["file"]) for _, r in held]
    assert main(["predict", "--model", str(out), "--format", "csv", "--no-progress", *inputs]) == 0
    answers = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert len(answers) == len(held) == 8
    right = sum(a["genre"] == style for a, (style, _) in zip(answers, held, strict=True))
    assert right / len(held) > 0.5, answers  # chance is 0.25
    assert main(["info", str(out), "--confusion"]) == 0
    text = capsys.readouterr().out
    assert "trained on:" in text and "grouped CV" in text and "true \\ pred" in text


def T_meta(out: Path) -> dict:
    from genrekit.models.modelfile import read_model_meta

    return read_model_meta(out / "model.safetensors")


# -- synthetic rows: cache, resume, the inputs users meet ---------------------------------------------

def _fake_rows(path: Path) -> dict:
    """Rows whose musicnn tags and AudioSet means depend on the label spelt in the file's first bytes."""
    text = path.read_bytes()
    if not text.startswith(b"FAKE "):
        raise T.GenrekitError(f"{path}: not an audio file (fake extractor)")
    label = text[5:].decode().split("|")[0].strip().casefold()
    seed = int.from_bytes(label.encode()[:4].ljust(4, b"x"), "little")
    rng = np.random.default_rng(seed)
    centre = rng.uniform(0.1, 0.9, 1002)  # 50 tags + 41 MFCC statistics + 911 mn04 outputs
    noise = np.random.default_rng(list(text)).normal(0, 0.05, (30, 1002))
    rows = np.clip(centre + noise, 0.01, 0.99).astype(np.float32)
    rows[1:10, 91:] = np.nan
    rows[11:20, 91:] = np.nan
    rows[21:, 91:] = np.nan
    return {"rows": rows, "audio_sha256": hashlib.sha256(text.split(b"|", 1)[1]).hexdigest(),
            "seconds": 30.0}


def _song(folder: Path, name: str, label: str, salt: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_bytes(f"FAKE {label}|{salt if salt is not None else f'{label}/{folder.name}/{name}'}".encode())
    return p


def _library(root: Path, labels=("salsa", "bachata", "kizomba"), per=6, albums=3) -> None:
    for lab in labels:
        for i in range(per):
            _song(root / lab / f"album{i % albums}", f"{lab}-{i}.wav", lab)


@pytest.fixture()
def fake_extractor(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []

    def fake(path: Path, audioset_weights: str | None = None, backbone: str = "musicnn+mn04") -> dict:
        calls.append(Path(path))
        e = _fake_rows(Path(path))
        if backbone == "mn04":  # an mn04-only head reads one row per 10 s window: the rows that ran
            e["rows"] = e["rows"][[0, 10, 20], 91:]
        return e

    monkeypatch.setattr(T, "extract_rows", fake)
    return calls


def test_resume_after_interrupt_extracts_only_the_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       fake_extractor: list[Path]) -> None:
    monkeypatch.setenv("GENREKIT_CACHE_DIR", str(tmp_path / "cache"))  # this test's own (it counts entries)
    root = tmp_path / "lib"
    _library(root)
    k = 7
    real = T.extract_rows

    def interrupted(path: Path, audioset_weights: str | None = None, backbone: str = "musicnn+mn04") -> dict:
        if len(fake_extractor) == k:
            raise KeyboardInterrupt  # Ctrl-C during the (k+1)-th file
        return real(path, audioset_weights, backbone)

    monkeypatch.setattr(T, "extract_rows", interrupted)
    rc = main(["train", "--model", "head", "--data", str(root), "--out", str(tmp_path / "m"), "--quiet"])
    assert rc == 130  # the CLI's answer to Ctrl-C
    assert len(fake_extractor) == k
    assert not (tmp_path / "m" / "model.safetensors").exists()
    done = set(fake_extractor)
    monkeypatch.setattr(T, "extract_rows", real)
    fake_extractor.clear()
    assert main(["train", "--model", "head", "--data", str(root), "--out", str(tmp_path / "m"), "--quiet"]) == 0
    assert len(fake_extractor) == 18 - k and not done & set(fake_extractor)
    # a refit after adding a song extracts that song only
    fake_extractor.clear()
    _song(root / "salsa" / "album9", "new.wav", "salsa")
    assert main(["train", "--model", "head", "--data", str(root), "--out", str(tmp_path / "m"), "--quiet"]) == 0
    assert [p.name for p in fake_extractor] == ["new.wav"]
    # editing a file misses the cache
    fake_extractor.clear()
    p = root / "salsa" / "album9" / "new.wav"
    p.write_bytes(b"FAKE salsa|new edited")
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    assert main(["train", "--model", "head", "--data", str(root), "--out", str(tmp_path / "m"), "--quiet"]) == 0
    assert [x.name for x in fake_extractor] == ["new.wav"]
    # the entries are part of the feature cache: `genrekit cache info` counts them, `clear` removes them
    from genrekit.cache import cache_usage, clear_cache

    head = [f for f in next(c for c in cache_usage() if c.name == "features").files if f.parent.parent.name == "head"]
    assert len(head) == 20  # 18 songs + the new one + its edited version
    clear_cache(["features"])
    fake_extractor.clear()
    assert main(["train", "--model", "head", "--data", str(root), "--out", str(tmp_path / "m"), "--quiet"]) == 0
    assert len(fake_extractor) == 19


def test_model_file_reads_like_any_model(tmp_path: Path, fake_extractor: list[Path], capsys) -> None:
    root = tmp_path / "lib"
    _library(root)
    out = tmp_path / "m"
    assert main(["train", "--model", "head", "--data", str(root), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "groups: 18 songs by folder below the label (9 groups)" in text
    assert "grouped CV" in text and "macro-F1" in text
    from genrekit.models.base import load_model

    model = load_model(out)
    assert model.labels == ["bachata", "kizomba", "salsa"] and not model.has_other
    rows = _fake_rows(root / "salsa" / "album0" / "salsa-0.wav")["rows"]
    p = model.track_probs_from_taggram(rows)
    assert p.shape == (3,) and model.labels[int(np.argmax(p))] == "salsa"
    assert model.segment_probs_from_taggram(rows).shape == (30, 3)
    # evaluate would flag a song of the fit as in-sample, by content, under any name
    from genrekit.manifest import in_fit

    copy = tmp_path / "renamed.wav"
    copy.write_bytes((root / "salsa" / "album0" / "salsa-0.wav").read_bytes())
    assert list(in_fit(T_meta(out)["training"], [str(copy)])) == [str(copy)]


def test_open_set_other_folder_unicode_and_case(tmp_path: Path, fake_extractor: list[Path], capsys) -> None:
    root = tmp_path / "lib"
    for lab, spelt in (("Música Criolla", "Música Criolla"), ("hip hop", "hip hop"), ("salsa", "salsa")):
        for i in range(6):
            _song(root / spelt / f"a{i % 3}", f"{i}.wav", lab)
    for i in range(3):  # "Hip Hop" differs only in case: one label
        _song(root / "Hip Hop" / f"b{i}", f"x{i}.wav", "hip hop")
    other = tmp_path / "outside"
    for i in range(9):
        _song(other / f"o{i % 3}", f"o{i}.wav", f"other{i % 3}")
    out = tmp_path / "m"
    assert main(["train", "--model", "head", "--data", str(root), "--other-folder", str(other),
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "differ only in case: merged as 'Hip Hop'" in text
    meta = T_meta(out)
    assert meta["labels"] == ["Hip Hop", "Música Criolla", "salsa"]
    assert meta["track_head_labels"][-1] == "other"
    assert meta["training"]["data"]["per_label"]["Hip Hop"] == 9
    assert {"fused_threshold", "track_threshold", "segment_threshold"} <= set(meta["open_set"])
    assert 0 <= meta["metrics"]["other_caught"] <= 1
    from genrekit.models.base import load_model

    model = load_model(out)
    assert model.has_other and model.open_threshold == 0.5
    capsys.readouterr()
    assert main(["info", str(out), "--confusion"]) == 0
    text = capsys.readouterr().out
    assert "open set:" in text and "answered 'other'" in text
    header = next(line for line in text.splitlines() if "true \\ pred" in line and "other" in line)
    assert header.split()[-1] == "other"  # the open-set matrix names its extra column


def test_bad_inputs_one_line_each_and_duplicates_dropped(tmp_path: Path, fake_extractor: list[Path], capsys) -> None:
    root = tmp_path / "lib"
    _library(root)
    (root / "salsa" / "album0" / "broken.mp3").write_bytes(b"\x00garbage")  # not FAKE: the extractor refuses it
    _song(root / "bachata" / "album1", "dup.wav", "bachata", salt="same")
    _song(root / "kizomba" / "album1", "dup.wav", "kizomba", salt="same")  # same audio, another label
    assert main(["train", "--model", "head", "--data", str(root), "--out", str(tmp_path / "m")]) == 0
    err = capsys.readouterr().err
    assert err.count("broken.mp3") == 1 and "skipped" in err
    assert "same audio under 2 labels" in err
    assert T_meta(tmp_path / "m")["training"]["data"]["songs"] == 18


def test_too_few_files_names_the_minimum(tmp_path: Path, fake_extractor: list[Path], capsys) -> None:
    root = tmp_path / "lib"
    _library(root, labels=("salsa", "bachata"))
    _song(root / "kizomba" / "a", "k.wav", "kizomba")
    assert main(["train", "--model", "head", "--data", str(root), "--out", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert "'kizomba' has 1" in err and f"at least {T.MIN_FILES}" in err
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_one_group_per_label_warns_and_skips_cv(tmp_path: Path, fake_extractor: list[Path], capsys) -> None:
    root = tmp_path / "lib"
    _library(root, albums=1)
    manifest = tmp_path / "songs.csv"
    with manifest.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["input", "genre", "group"])
        for f in sorted(root.rglob("*.wav")):
            w.writerow([f, f.parent.parent.name, "one"])
    assert main(["train", "--model", "head", "--manifest", str(manifest), "--out", str(tmp_path / "m")]) == 0
    assert "no cross-validation" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "m")]) == 0
    assert "grouped CV:  none (no cross-validation" in capsys.readouterr().out
    meta = T_meta(tmp_path / "m")
    assert meta["metrics"] == {} and meta["training"]["data"]["groups_by"] == {"group column": 18}


def test_other_label_needs_open_set(tmp_path: Path, fake_extractor: list[Path], capsys) -> None:
    root = tmp_path / "lib"
    _library(root, labels=("salsa", "bachata", "other"))
    assert main(["train", "--model", "head", "--data", str(root), "--out", str(tmp_path / "m")]) == 1
    assert "--open-set" in capsys.readouterr().err
    assert main(["train", "--model", "head", "--data", str(root), "--open-set", "--out", str(tmp_path / "m"),
                 "--quiet"]) == 0
    assert T_meta(tmp_path / "m")["track_head_labels"] == ["bachata", "salsa", "other"]


def test_reference_group_zero_shot_and_cv_parts(tmp_path: Path, fake_extractor: list[Path], capsys) -> None:
    """The options the default model is built with: a reference group in every fit and never
    scored, mn04's zero-shot vote, unweighted classes, one fold per group. The CV's probabilities
    are the model file's own (one function computes both), and the parts are scored on the same folds."""
    root = tmp_path / "lib"
    labels = ("salsa", "flamenco", "afrobeat")  # each names an AudioSet genre class
    _library(root, labels=labels, per=6, albums=3)
    for lab in labels:
        for i in range(4):
            _song(root / "ref" / lab, f"r{i}.wav", lab)
    for i in range(6):  # outside the labels: "other" (the open set's zero-shot vote leaves p(other) alone)
        _song(root / "other" / f"album{i % 3}", f"o{i}.wav", f"other{i % 2}")
    manifest = tmp_path / "songs.csv"
    with manifest.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["input", "genre", "group"])
        for f in sorted(root.rglob("*.wav")):
            ref = f.parent.parent.name == "ref"
            w.writerow([f, f.parent.name if ref else f.parent.parent.name, "ref" if ref else f.parent.name])
    out = tmp_path / "m"
    assert main(["train", "--model", "head", "--manifest", str(manifest), "--always-fit", "ref", "--cv-folds", "0",
                 "--c-grid", "0.03", "--class-weight", "none", "--zero-shot-weight", "0.5", "--open-set", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "always in the fit, never scored: 12 songs of ref" in text and "leave one group out (3 folds)" in text
    meta = T_meta(out)
    assert meta["metrics"]["cv"]["n"] == 18  # the reference songs are never scored
    assert meta["metrics"]["cv_open_set"]["n"] == 24
    parts = meta["metrics"]["cv_components"]
    assert set(parts) == set(T.COMPONENT_NAMES.values())
    assert all(r["n"] == 18 for r in parts.values())
    assert "other_caught" in parts["the model"] and "other_caught" not in parts["mn04 zero-shot (no training)"]
    assert meta["audioset"]["zero_shot_weight"] == 0.5 and meta["training"]["config"]["class_weight"] == "none"
    assert meta["training"]["data"]["always_in_fit"] == {"ref": 12}
    assert "'other' thresholds chosen on the other folds" in meta["metrics"]["cv_protocol"]
    assert 0 < meta["open_set"]["segment_threshold"] < 1
    from genrekit.models.base import load_model
    from genrekit.models.modelfile import read_model_file

    model = load_model(out)
    tensors, _ = read_model_file(out / "model.safetensors", numpy=True)
    heads = tuple({k.split(".", 2)[2]: np.asarray(v) for k, v in tensors.items() if k.startswith(f"{h}.m0.")}
                  for h in ("track", "audioset"))
    song = root / "flamenco" / "album1" / "flamenco-1.wav"
    F = T.song_features([_fake_rows(song)])
    expected = T.component_probs(heads, F, np.array([0]), 0.5, list(meta["labels"]), 0.5)["model"][0]
    rows = _fake_rows(song)["rows"]
    np.testing.assert_allclose(model._fused_probs(rows), expected, atol=1e-5)
    np.testing.assert_allclose(model.track_probs_from_taggram(rows), expected[:3] / expected[:3].sum(), atol=1e-5)
    assert main(["info", str(out)]) == 0
    assert "mn04 zero-shot (no training)" in capsys.readouterr().out


def test_mn04_backbone_writes_an_audioset_head(tmp_path: Path, fake_extractor: list[Path], capsys) -> None:
    """``--backbone mn04`` (how the default is built): one head on mn04's window rows, no musicnn.
    The CV scores the model, its head and its zero-shot vote on the same folds; the CV's
    probabilities are the model file's; the timeline's threshold comes from held-out windows."""
    root = tmp_path / "lib"
    labels = ("salsa", "flamenco", "afrobeat")
    _library(root, labels=labels, per=6, albums=3)
    other = tmp_path / "outside"
    for i in range(6):
        _song(other / f"album{i % 3}", f"o{i}.wav", f"other{i % 2}")
    out = tmp_path / "m"
    assert main(["train", "--model", "head", "--data", str(root), "--other-folder", str(other), "--backbone", "mn04",
                 "--cv-folds", "0", "--c-grid", "0.03", "--zero-shot-weight", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "musicnn" not in text  # neither extracted nor scored
    meta = T_meta(out)
    assert meta["format"] == "genrekit-audioset-head" and meta["feature_spec"]["kind"] == "audioset_windows"
    assert meta["training"]["config"]["backbone"] == "mn04" and "alpha" not in meta["training"]["config"]
    parts = meta["metrics"]["cv_components"]
    assert set(parts) == {"AudioSet (mn04) head alone", "the model", "mn04 zero-shot (no training)"}
    assert parts["the model"]["accuracy"] == meta["metrics"]["cv"]["accuracy"]
    assert all(0 < meta["open_set"][f"{k}_threshold"] < 1 for k in ("fused", "segment"))
    from genrekit.models.audioset_head import AudioSetGenreModel
    from genrekit.models.base import load_model
    from genrekit.models.modelfile import read_model_file

    model = load_model(out)
    assert isinstance(model, AudioSetGenreModel) and model.has_other and model.zero_shot_weight == 1.0
    tensors, _ = read_model_file(out / "model.safetensors", numpy=True)
    head = {k.split(".", 2)[2]: np.asarray(v) for k, v in tensors.items() if k.startswith("audioset.m0.")}
    song = root / "flamenco" / "album1" / "flamenco-1.wav"
    entry = fake_extractor and T.extract_rows(song, None, "mn04")  # the fake: mn04 rows [3, 911]
    F = T.song_features([entry], "mn04")
    expected = T.component_probs((None, head), F, np.array([0]), 0.0, list(meta["labels"]), 1.0)["model"][0]
    rows = entry["rows"]
    np.testing.assert_allclose(model.track_probs_from_taggram(rows), expected[:3] / expected[:3].sum(), atol=1e-5)
    assert model.segment_probs_from_taggram(rows).shape == (3, 3)
    assert model.labels[int(np.argmax(model.track_probs_from_taggram(rows)))] == "flamenco"
    assert model.style_from_taggram(rows)
    # a timeline window: the model's in-set score is the CV's window score, shifted by the threshold
    from genrekit.heads.openset import recalibrate
    from genrekit.models.audioset_head import head_probs

    cv_side = 1.0 - head_probs(head, rows.astype(np.float64), list(meta["labels"]), 1.0)[:, -1]
    np.testing.assert_allclose(model.segment_in_set_from_taggram(rows),
                               recalibrate(cv_side, meta["open_set"]["segment_threshold"]), atol=1e-5)


def test_zero_shot_needs_audioset_names_and_reference_group_must_exist(tmp_path: Path, fake_extractor: list[Path],
                                                                      capsys) -> None:
    root = tmp_path / "lib"
    _library(root)  # salsa, bachata, kizomba
    assert main(["train", "--model", "head", "--data", str(root), "--zero-shot-weight", "1",
                 "--out", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert "'bachata', 'kizomba'" in err and "'salsa'" not in err
    assert main(["train", "--model", "head", "--data", str(root), "--always-fit", "nowhere",
                 "--out", str(tmp_path / "m")]) == 1
    assert "no song is in group 'nowhere'" in capsys.readouterr().err


def test_zero_shot_class_names() -> None:
    from genrekit.models import audioset as AS

    names = AS.labels()
    assert names[AS.zero_shot_class("Salsa")] == "Salsa music"
    assert names[AS.zero_shot_class(" drum  and bass ")] == "Drum and bass"
    assert AS.zero_shot_class("hiphop") == AS.ZERO_SHOT_TEN["hiphop"]
    assert AS.zero_shot_class("kizomba") is None and AS.zero_shot_class("Speech") is None  # not a genre class
    assert names[AS.zero_shot_class("R&B")] == "Rhythm and blues" and names[AS.zero_shot_class("EDM")] == "Electronic dance music"
    assert AS.zero_shot_class("Hip-Hop") == AS.ZERO_SHOT_TEN["hiphop"]



def test_segment_threshold_from_held_out_windows(tmp_path: Path, fake_extractor: list[Path]) -> None:
    """The timeline's "other" threshold is chosen on windows of held-out songs scored by a segment
    head fitted without them: every scored song's every patch window, never a reference song's."""
    root = tmp_path / "lib"
    _library(root, labels=("salsa", "bachata", "other"), per=6, albums=3)
    songs = [T.Song(p, p.parent.parent.name, folder_group=p.parent.name) for p in sorted(root.rglob("*.wav"))]
    T.assign_groups(songs)
    labels = ["bachata", "salsa", "other"]
    y = np.array([labels.index(s.label) for s in songs])
    fixed = np.array([s.folder_group == "album0" and s.label == "salsa" for s in songs])
    F = T.song_features([_fake_rows(s.path) for s in songs])
    folds, _ = T.folds_for(np.array([s.group for s in songs]), 0, fixed)
    scores, owner = T.segment_oof_scores(F, y, folds, 0.03, 3)
    assert set(owner.tolist()) == set(np.flatnonzero(~fixed).tolist())
    assert len(scores) == sum(len(F.tags[i]) for i in np.flatnonzero(~fixed))
    assert np.all((scores >= 0) & (scores <= 1))


def test_always_fit_names_folders_and_refuses_unscored_labels(tmp_path: Path, fake_extractor: list[Path],
                                                              capsys) -> None:
    root = tmp_path / "lib"
    _library(root, labels=("salsa", "bachata", "kizomba"), per=6, albums=3)
    assert main(["train", "--model", "head", "--data", str(root), "--always-fit", "album0", "--cv-folds", "0",
                 "--out", str(tmp_path / "m")]) == 0
    assert "always in the fit, never scored: 6 songs of album0" in capsys.readouterr().out
    assert T_meta(tmp_path / "m")["metrics"]["cv"]["n"] == 12
    assert main(["train", "--model", "head", "--data", str(root), "--always-fit", "album7",
                 "--out", str(tmp_path / "m2")]) == 1
    err = capsys.readouterr().err
    assert "no song is in group 'album7'" in err and "'album0', 'album1', 'album2'" in err
    for i in range(3):
        _song(root / "zouk" / "ref", f"z{i}.wav", "zouk")  # every zouk song in the reference group
    assert main(["train", "--model", "head", "--data", str(root), "--always-fit", "ref",
                 "--out", str(tmp_path / "m3")]) == 1
    assert "'zouk': every song is in an --always-fit group" in capsys.readouterr().err


def test_window_head_counts_each_song_once_and_reads_only_its_songs(monkeypatch: pytest.MonkeyPatch) -> None:
    """``fit_window_head`` (the mn04 head): one row per window of the fit's songs only, each song's
    rows weighing 1 in all however many windows it has; with one window per song it is the
    track-mean fit."""
    from genrekit.models import audioset as AS

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 4)
    counts = [1 + i % 3 for i in range(len(y))]  # 1, 2 or 3 windows: a clip beside longer songs
    wins = [rng.normal(size=(k, AS.ROW)) + y[i] for i, k in enumerate(counts)]
    mean = np.stack([w.mean(0) for w in wins])
    F = T.Features([], AS.head_features(mean, "all"), [], mean, wins)
    idx = np.arange(len(y) - 1)  # the last song held out
    seen = {}
    real = T._fit_lr

    def spy(X, Y, C, n, w=None, balanced=True):
        seen.update(X=X, Y=Y, w=w)
        return real(X, Y, C, n, w, balanced)

    monkeypatch.setattr(T, "_fit_lr", spy)
    T.fit_window_head(F, y, idx, 0.03, 3, balanced=False)
    assert len(seen["X"]) == sum(counts[i] for i in idx)  # every window of the fit's songs, no other
    start = np.cumsum([0] + [counts[i] for i in idx])
    per_song = [seen["w"][a:b].sum() for a, b in zip(start[:-1], start[1:], strict=True)]
    np.testing.assert_allclose(per_song, 1.0)  # each song once, whatever its window count
    np.testing.assert_array_equal(seen["X"], np.concatenate([wins[i] for i in idx]))
    np.testing.assert_array_equal(seen["Y"], np.repeat(y[idx], [counts[i] for i in idx]))
    monkeypatch.setattr(T, "_fit_lr", real)
    one = [w[:1] for w in wins]
    F1 = T.Features([], AS.head_features(np.concatenate(one), "all"), [], np.concatenate(one), one)
    np.testing.assert_allclose(T.fit_window_head(F1, y, idx, 0.03, 3, balanced=False)["w1"],
                               real(F1.aset[idx], y[idx], 0.03, 3, balanced=False)["w1"], atol=1e-4)
