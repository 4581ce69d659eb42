"""Datasets: split lists, stratified track splits without leakage, tables, arrays, taggrams, and
audio folders whose unreadable files are skipped and listed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genrekit.datasets import (
    DatasetError,
    check_fractions,
    detect_kind,
    load_audio_folder,
    load_data,
    load_features_csv,
    load_notebook_arrays,
    load_taggrams,
    read_split_lists,
    scan_audio_folder,
    stratified_group_split,
    track_key,
)
from genrekit.features import MfccSegmentSpec

from .conftest import tone


def _no_leak(bundle) -> None:
    seen: dict[str, str] = {}
    for name, split in bundle.splits.items():
        for g in set(split.groups.tolist()):
            assert g not in seen, f"track {g} in {seen[g]} and {name}"
            seen[g] = name


def test_track_key_matches_lists_to_files() -> None:
    assert track_key("blues/blues.00009.wav") == track_key("/x/gtzan/blues/blues.00009.au") == "blues/blues.00009"


def test_stratified_group_split_keeps_tracks_whole() -> None:
    groups = np.repeat([f"t{i}" for i in range(60)], 5)
    y = np.repeat(np.arange(60) % 3, 5)
    masks = stratified_group_split(groups, y, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=4)
    assert sum(m.sum() for m in masks.values()) == len(groups)
    sets = {k: set(groups[m]) for k, m in masks.items()}
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
    for k in ("val", "test"):
        assert sorted(np.bincount(y[masks[k]] , minlength=3) // 5) == [3, 3, 3]
    again = stratified_group_split(groups, y, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=4)
    assert all((again[k] == masks[k]).all() for k in masks)


def test_gtzan_split_lists(shared_data: Path) -> None:
    lists = read_split_lists(shared_data / "gtzan-splits")
    assert {k: len(v) for k, v in lists.items()} == {"train": 443, "val": 197, "test": 290}
    assert not set(lists["train"]) & set(lists["test"])


def test_features_csv_with_split_lists(shared_data: Path) -> None:
    b = load_features_csv(shared_data / "gtzan-features" / "features_30_sec.csv", shared_data / "gtzan-splits")
    assert {k: len(s) for k, s in b.splits.items()} == {"train": 443, "val": 197, "test": 290}
    assert b.unit == "track" and len(b.labels) == 10 and b.splits["train"].X.shape[1] == 40
    assert b.spec["kind"] == "mfcc_stats"  # the 40 MFCC columns are what MfccStatsSpec computes
    _no_leak(b)
    allc = load_features_csv(shared_data / "gtzan-features" / "features_30_sec.csv", columns="all", seed=1)
    assert allc.splits["train"].X.shape[1] == 57 and allc.spec["kind"] == "table"
    assert sum(len(s) for s in allc.splits.values()) == 1000
    _no_leak(allc)


def test_notebook_arrays(shared_data: Path) -> None:
    b = load_notebook_arrays(shared_data / "seed-mfcc")
    assert {k: len(s) for k, s in b.splits.items()} == {"train": 3200, "val": 800, "test": 1376}
    assert b.labels == ["blues", "classical", "hiphop", "rock_metal_hardrock"] and not b.grouped
    assert detect_kind(shared_data / "seed-mfcc") == "arrays"


def test_taggrams_group_by_track(shared_data: Path) -> None:
    b = load_taggrams(shared_data / "gtzan-musicnn")
    assert b.labels[0] == "blues" and b.labels[-1] == "rock" and b.grouped
    assert b.splits["test"].n_tracks == 290
    assert b.splits["train"].n_tracks + b.splits["val"].n_tracks == 443
    _no_leak(b)
    one = load_data(shared_data / "gtzan-musicnn" / "msd_taggram_test.npz", val_fraction=0.0, test_fraction=1.0)
    assert len(one.splits["test"]) == len(b.splits["test"])


def _write_folder(root: Path) -> None:
    for gi, genre in enumerate(("bass", "treble")):
        d = root / genre
        d.mkdir(parents=True)
        for i in range(4):
            sf.write(d / f"{genre}.{i:05d}.wav", tone(2.5, freq=110 * (1 + 6 * gi) + 7 * i), 22050)
    (root / "bass" / "broken.wav").write_bytes(b"RIFF garbage, not audio")
    (root / "treble" / "empty.flac").write_bytes(b"")
    (root / "treble" / "notes.txt").write_text("not audio, not listed")


def test_audio_folder_skips_bad_files_and_does_not_leak(tmp_path: Path) -> None:
    _write_folder(tmp_path / "music")
    b = load_audio_folder(tmp_path / "music", MfccSegmentSpec(), seed=0, val_fraction=0.25, test_fraction=0.25,
                          workers=2, progress=False)
    bad = sorted(Path(s["path"]).name for s in b.skipped)
    assert bad == ["broken.wav", "empty.flac"]
    assert all(s["reason"] for s in b.skipped)
    assert b.labels == ["bass", "treble"] and b.unit == "segment" and b.grouped
    assert {k: s.n_tracks for k, s in b.splits.items()} == {"train": 4, "val": 2, "test": 2}
    assert b.splits["train"].X.shape[1:] == (26,)
    _no_leak(b)


def test_audio_folder_with_lists_reports_missing(tmp_path: Path) -> None:
    _write_folder(tmp_path / "music")
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train_filtered.txt").write_text("bass/bass.00000.wav\nbass/bass.00001.wav\ntreble/treble.00000.wav\n"
                                              "treble/treble.00001.wav\nbass/gone.00042.wav\n")
    (lists / "valid_filtered.txt").write_text("bass/bass.00002.wav\ntreble/treble.00002.wav\n")
    (lists / "test_filtered.txt").write_text("bass/bass.00003.wav\ntreble/treble.00003.wav\nbass/broken.wav\n")
    b = load_audio_folder(tmp_path / "music", MfccSegmentSpec(), splits_dir=lists, workers=1, progress=False)
    assert {k: s.n_tracks for k, s in b.splits.items()} == {"train": 4, "val": 2, "test": 2}
    assert [Path(s["path"]).name for s in b.skipped] == ["broken.wav"]
    assert any("1 of 5 tracks in the train list" in n for n in b.notes)
    _no_leak(b)


def test_shared_clips_follow_fault_filtered_lists(shared_data: Path) -> None:
    from genrekit.features import MfccStatsSpec

    lists = read_split_lists(shared_data / "gtzan-splits")
    clips = shared_data / "gtzan-clips"
    b = load_audio_folder(clips, MfccStatsSpec(), splits_dir=shared_data / "gtzan-splits", max_per_label=3,
                          workers=2, progress=False)
    _no_leak(b)
    for name, split in b.splits.items():
        assert set(split.groups.tolist()) <= set(lists[name])


def test_bad_data_paths(tmp_path: Path) -> None:
    with pytest.raises(DatasetError):
        detect_kind(tmp_path / "nope")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DatasetError):
        detect_kind(tmp_path / "x.txt")
    with pytest.raises(DatasetError, match="no audio files"):
        (tmp_path / "empty" / "genre").mkdir(parents=True)
        load_audio_folder(tmp_path / "empty", MfccSegmentSpec(), progress=False)


@pytest.mark.parametrize("val,test", [(0.9, 0.15), (0.5, 0.5), (1.0, 0.0), (-0.1, 0.2), (0.2, 1.0)])
def test_bad_fractions_fail_before_reading(tmp_path: Path, monkeypatch, val: float, test: float) -> None:
    import genrekit.datasets as datasets

    _write_folder(tmp_path / "music")
    monkeypatch.setattr(datasets, "extract_files", lambda *a, **k: pytest.fail("files were read"))
    with pytest.raises(DatasetError) as ei:
        load_data(tmp_path / "music", spec=MfccSegmentSpec(), val_fraction=val, test_fraction=test, progress=False)
    msg = str(ei.value)
    assert f"--val-fraction {val:g} and --test-fraction {test:g}" in msg and "\n" not in msg


def test_good_fractions_pass() -> None:
    for val, test in ((0.15, 0.15), (0.0, 0.0), (0.5, 0.49), (0.0, 1.0)):  # (0, 1): score every track
        check_fractions(val, test)


def test_split_lists_naming_no_file_of_the_folder(tmp_path: Path) -> None:
    _write_folder(tmp_path / "music")
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train_filtered.txt").write_text("blues/blues.00000.wav\n")
    with pytest.raises(DatasetError) as ei:
        load_audio_folder(tmp_path / "music", MfccSegmentSpec(), splits_dir=lists, workers=1, progress=False)
    assert str(ei.value).startswith(f"{tmp_path / 'music'}: none of its 10 audio files is named in the split "
                                    f"lists in {lists}")


def test_audio_folder_skips_hidden_files_and_folders(tmp_path: Path) -> None:
    _write_folder(tmp_path / "music")
    bass = tmp_path / "music" / "bass"
    (bass / "._bass.00000.wav").write_bytes(b"\x00\x05\x16\x07 AppleDouble sidecar")
    (bass / ".trash").mkdir()
    sf.write(bass / ".trash" / "old.wav", tone(2.5), 22050)
    (tmp_path / "music" / ".git").mkdir()
    sf.write(tmp_path / "music" / ".git" / "x.wav", tone(2.5), 22050)
    names = [(f.name, g) for f, g in scan_audio_folder(tmp_path / "music")]
    assert len(names) == 10 and all(not n.startswith(".") and n != "old.wav" for n, _ in names)
    assert ("broken.wav", "bass") in names  # not hidden: still listed (and reported as unreadable later)


def test_audio_folder_hides_decoder_chatter(tmp_path: Path) -> None:
    """A text file named .mp3 makes libmpg123 print 'Illegal Audio-MPEG-Header' notes straight to
    fd 2; the loader lists the file in ``skipped`` and must print nothing of its own there. A child
    process shows the real fd 2 (pytest's capture would hide it)."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    _write_folder(tmp_path / "music")
    (tmp_path / "music" / "bass" / "notes.mp3").write_text("these are my notes, not audio\n" * 200)
    script = ("import sys; from genrekit.datasets import load_audio_folder; from genrekit.features import MfccSegmentSpec; "
              "b = load_audio_folder(sys.argv[1], MfccSegmentSpec(), workers=1, use_cache=False, progress=False); "
              "print(sorted(s['path'].rsplit('/', 1)[-1] for s in b.skipped))")

    def run(debug: bool) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "GENREKIT_DEBUG"} | ({"GENREKIT_DEBUG": "1"} if debug else {})
        r = subprocess.run([sys.executable, "-c", script, str(tmp_path / "music")], cwd=repo, capture_output=True,
                           text=True, timeout=120, env=env)
        assert r.returncode == 0, r.stderr
        return r

    if "Illegal Audio-MPEG-Header" not in run(debug=True).stderr:
        pytest.skip("this libsndfile/libmpg123 build prints no notes for a non-audio .mp3")
    r = run(debug=False)
    assert r.stderr == ""
    assert "notes.mp3" in r.stdout


def test_audio_folder_skips_what_prediction_refuses(tmp_path) -> None:
    """Training data go through the same checks as prediction: a 0.2 s clip and a silent clip are
    listed in ``skipped`` with prediction's reasons, not padded into training segments."""
    from genrekit.datasets import load_audio_folder
    from genrekit.features import MfccSegmentSpec

    from .conftest import tone

    for genre in ("a", "b"):
        (tmp_path / genre).mkdir()
        for i in range(3):
            sf.write(tmp_path / genre / f"{genre}{i}.wav", tone(2.0, freq=200 + 300 * i), 22050)
    sf.write(tmp_path / "a" / "short.wav", tone(0.2), 22050)
    sf.write(tmp_path / "b" / "silent.wav", np.zeros(44100, np.float32), 22050)
    bundle = load_audio_folder(tmp_path, MfccSegmentSpec(), val_fraction=0.0, test_fraction=0.0, workers=1,
                               progress=False)
    reasons = {Path(s["path"]).name: s["reason"] for s in bundle.skipped}
    assert set(reasons) == {"short.wav", "silent.wav"}
    assert "too short: 0.20 s" in reasons["short.wav"] and "silent" in reasons["silent.wav"]
    assert bundle.splits["train"].n_tracks == 6


def test_clip_by_stem_finds_any_extension(tmp_path: Path) -> None:
    """GTZAN folders change format (WAV -> FLAC) but keep stems: a key finds the file whatever its
    extension, a listed `.wav` name finds the `.flac`, and a missing stem is an error, not a skip."""
    from genrekit.datasets import DatasetError, clip_by_stem, clips_in

    (tmp_path / "rock").mkdir()
    for name in ("rock.00001.flac", "rock.00000.wav", "rock.00000.txt", "rock.00002.au"):
        (tmp_path / "rock" / name).write_bytes(b"x")
    assert clip_by_stem(tmp_path, "rock/rock.00001").name == "rock.00001.flac"
    assert clip_by_stem(tmp_path, "rock/rock.00001.wav").name == "rock.00001.flac"
    assert clip_by_stem(tmp_path, "rock/rock.00000").name == "rock.00000.wav"
    assert [p.name for p in clips_in(tmp_path, "rock")] == ["rock.00000.wav", "rock.00001.flac", "rock.00002.au"]
    with pytest.raises(DatasetError, match="rock.00003"):
        clip_by_stem(tmp_path, "rock/rock.00003")


def test_clip_by_stem_takes_keys_with_and_without_extension(tmp_path: Path) -> None:
    """GTZAN stems hold a dot ("rock.00000"): a key without extension must not lose ".00000"."""
    from genrekit.datasets import DatasetError, clip_by_stem

    (tmp_path / "rock").mkdir()
    flac = tmp_path / "rock" / "rock.00000.flac"
    sf.write(flac, tone(1.0), 22050)
    sf.write(tmp_path / "rock" / "rock.00001.wav", tone(1.0), 22050)
    assert clip_by_stem(tmp_path, "rock/rock.00000") == flac
    assert clip_by_stem(tmp_path, "rock/rock.00000.wav") == flac  # a split list's name, moved to FLAC
    assert clip_by_stem(tmp_path, "rock/rock.00001").suffix == ".wav"
    with pytest.raises(DatasetError, match="rock.00002: no audio file"):
        clip_by_stem(tmp_path, "rock/rock.00002")


def test_missing_backbone_weights_stop_extraction_in_one_error(tmp_path: Path, monkeypatch) -> None:
    """Weights the machine lacks are not a bad file: extraction stops with that error instead of
    listing every file as skipped ("none of 20 audio files could be read")."""
    from genrekit.backbones.efficientat import WeightsNotFoundError
    from genrekit.datasets import extract_files

    for i in range(3):
        sf.write(tmp_path / f"{i}.wav", tone(2.0), 22050)

    def no_weights(self, path):
        raise WeightsNotFoundError("EfficientAT weights not found (offline)")

    monkeypatch.setattr(MfccSegmentSpec, "extract_file", no_weights)
    with pytest.raises(WeightsNotFoundError, match="offline"):
        extract_files(sorted(tmp_path.glob("*.wav")), MfccSegmentSpec(), workers=1, use_cache=False, progress=False)
