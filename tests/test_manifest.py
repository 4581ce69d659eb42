"""``evaluate --manifest`` on songs the model was fitted on: an in-sample warning
(``genrekit.manifest.in_fit``), by content hash or by the real-songs list the head was fit on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import soundfile as sf

from genrekit.manifest import evaluate_manifest, in_fit

from .conftest import tone
from .predict_toy import ToyModel


def _real_songs(root: Path, n: int) -> list[Path]:
    """A ``real-songs`` folder laid out as the shared one: files and a labels.csv listing them."""
    folder = root / "real-songs"
    (folder / "gtzan-genres" / "jazz").mkdir(parents=True)
    songs = []
    for i in range(n):
        p = folder / "gtzan-genres" / "jazz" / f"song{i}.wav"
        sf.write(p, tone(2.5, freq=220.0 * (i + 1)), 22050)
        songs.append(p)
    rows = "".join(f"gtzan-genres/jazz/song{i}.wav,jazz,yes,src{i}\n" for i in range(n))
    (folder / "labels.csv").write_text("file,genre,in_gtzan_ten,source_repo\n" + rows)
    return songs


def _model(training: dict) -> ToyModel:
    m = ToyModel()
    m.info["training"] = training
    return m


def test_songs_among_the_fitted_real_songs_get_an_in_sample_warning(tmp_path: Path, capsys) -> None:
    """The committed head records how many real songs it was fitted on; the script fits the first
    rows of real-songs/labels.csv (the list only grows at its end): those rows are in-sample."""
    songs = _real_songs(tmp_path, 3)
    training = {"data": {"real_songs_in_ten": 1, "real_songs_outside": 1}, "script": "scripts/train_real_head.py"}
    man = tmp_path / "songs.csv"
    man.write_text("input,genre\n" + "".join(f"{p},jazz\n" for p in songs))
    m = evaluate_manifest(_model(training), man, tmp_path / "out", timelines=False)
    err = capsys.readouterr().err
    warning = next(line for line in err.splitlines() if "in-sample" in line)
    assert warning.startswith("genrekit: warning: ") and "2 of 3 songs are in the model's own fit" in warning
    assert [e["in_fit"] for e in m["per_song"]] == [True, True, False] and m["n_in_fit"] == 2
    assert "**In-sample:** 2 of these songs" in (tmp_path / "out" / "report.md").read_text()


def test_no_warning_for_songs_outside_the_fit_or_models_without_a_record(tmp_path: Path, capsys) -> None:
    songs = _real_songs(tmp_path, 3)
    man = tmp_path / "songs.csv"
    man.write_text(f"input,genre\n{songs[2]},jazz\n")
    training = {"data": {"real_songs_in_ten": 1, "real_songs_outside": 1}, "script": "scripts/train_real_head.py"}
    evaluate_manifest(_model(training), man, tmp_path / "out", timelines=False)
    assert "in-sample" not in capsys.readouterr().err
    assert in_fit(None, [str(songs[0])]) == {} and in_fit({"data": {"tracks": 3}}, [str(songs[0])]) == {}


def test_heads_that_list_their_fit_are_matched_by_content(tmp_path: Path) -> None:
    """``training.fit_files`` (what scripts/train_real_head.py stores now): the same audio under
    another name and folder is still recognised; different audio is not."""
    songs = _real_songs(tmp_path, 2)
    digest = hashlib.sha256(songs[0].read_bytes()).hexdigest()
    training = {"fit_files": [{"path": "gtzan-genres/jazz/song0.wav", "sha256": digest}]}
    copy = tmp_path / "my music" / "renamed.wav"
    copy.parent.mkdir()
    copy.write_bytes(songs[0].read_bytes())
    got = in_fit(training, [str(copy), str(songs[1]), str(tmp_path / "missing.wav")])
    assert list(got) == [str(copy)] and "gtzan-genres/jazz/song0.wav" in got[str(copy)]
    assert json.dumps(got)  # plain strings: it goes into the metrics
