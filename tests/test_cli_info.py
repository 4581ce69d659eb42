"""`genrekit info`: a model file's labels, feature settings and metrics, from its header alone."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from genrekit.cli.main import main
from genrekit.models.base import BUILTIN_MODELS
from genrekit.models.default import GENRES, HEAD_PATH
from genrekit.models.modelfile import read_model_meta, save_model_file


def test_info_on_the_default_model(capsys) -> None:
    """The default (mn04 alone): its spec, the licence, the CV of it and its parts, the GTZAN clips."""
    meta = read_model_meta(BUILTIN_MODELS["default"])
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"labels (10): {', '.join(GENRES)}" in out
    assert "audioset_windows: 22050 Hz, mono; window_seconds 10.0, hop_seconds 10.0" in out
    assert "backbone:    audioset: efficientat_mn04 (MIT" in out and "musicnn" not in out.split("grouped CV")[0]
    head = next(line for line in out.splitlines() if line.startswith("head:"))
    assert "alpha" not in head and "zero-shot weight 1.0" in head and "backbone mn04" in head
    m = meta["metrics"]
    assert f"accuracy {m['cv']['accuracy']:.3f}" in out and f"{m['other_caught']:.1%}" in out
    assert f"GTZAN test:  the {m['test_audio_clips']['n']} test clips with audio" in out


def test_info_on_the_musicnn_model(capsys) -> None:
    meta = read_model_meta(HEAD_PATH)
    assert main(["info", "musicnn", "--confusion"]) == 0
    out = capsys.readouterr().out
    assert f"labels (10): {', '.join(GENRES)}" in out
    assert "musicnn_mfcc: 22050 Hz, mono" in out  # what predict applies to every input
    acc = meta["metrics"]["test_track"]["accuracy"]
    assert f"test_track           accuracy {acc:.4f}" in out
    block = out.split("confusion (test_track;", 1)[1].split("confusion (", 1)[0]  # the 290 tracks' matrix
    rows = [line.split() for line in block.splitlines() if line.split()[:1] and line.split()[0] in GENRES]
    assert "backbone:    audioset: efficientat_mn04 (MIT" in out and "musicnn: MSD_musicnn (ISC" in out  # licences
    assert "grouped CV of the model and its parts" in out
    assert len(rows) == 10 and sum(int(v) for r in rows for v in r[1:]) == meta["metrics"]["test_track"]["n"]
    header = next(line for line in out.splitlines() if "true \\ pred" in line)
    assert header.split()[3:] == [g[:5] for g in GENRES]  # columns named: blues class count ...


def test_confusion_header_uses_full_labels_when_cut_ones_clash() -> None:
    from genrekit.cli.info import confusion_lines

    lines = confusion_lines(["electro", "electronic", "x"], [[1, 0, 0], [0, 12345, 0], [0, 0, 1]])
    assert lines[0].split()[3:] == ["electro", "electronic", "x"]
    widths = {len(line) for line in lines}
    assert len(widths) == 1  # header and rows line up


def test_info_json_counts_the_tensors(tmp_path: Path, capsys) -> None:
    meta = {"format": "genrekit-torch", "labels": ["low", "high"],
            "config": {"arch": "fnn", "hidden": [8]},
            "spec": {"kind": "mfcc_stats", "sample_rate": 16000, "mono": False, "n_mfcc": 13},
            "metrics": {"best_epoch": 3, "test": {"accuracy": 0.75, "macro_f1": 0.7, "n": 8}},
            "info": {"training": {"optimizer": "adam", "lr": 0.01}, "data": {"tracks": {"train": 6, "test": 8}}}}
    folder = tmp_path / "run"
    folder.mkdir()
    save_model_file(folder / "model.safetensors", {"w": torch.zeros(3, 4), "b": torch.zeros(4)}, meta)
    assert main(["info", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "mfcc_stats: 16000 Hz, channels kept; n_mfcc 13" in text
    assert "test                 accuracy 0.7500  macro-F1 0.7000  n=8" in text
    assert "architecture: arch fnn, hidden [8]" in text and "best_epoch 3" in text
    assert main(["info", str(folder), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["meta"] == meta and got["tensors"] == 2 and got["values"] == 16
    assert main(["info", str(folder), "--confusion"]) == 0
    assert "confusion: none stored in this file" in capsys.readouterr().out


def test_info_on_a_table_model_says_it_cannot_read_audio(tmp_path: Path, capsys) -> None:
    meta = {"format": "genrekit-torch", "labels": ["a", "b"], "config": {"arch": "fnn"},
            "spec": {"kind": "table", "feature_names": ["f1", "f2", "f3", "f4", "f5"]}, "metrics": {}}
    save_model_file(tmp_path / "m.safetensors", {"w": torch.zeros(2)}, meta)
    assert main(["info", str(tmp_path / "m.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "features:    a precomputed table of 5 columns (f1, f2, f3, f4, ...); this model cannot read audio" in out


def test_info_errors_name_the_input(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.safetensors"
    assert main(["info", str(missing)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"genrekit: error: {missing}: no such model file"
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model")
    assert main(["info", str(junk)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(junk) in err[0] and "not a safetensors model file" in err[0]


def test_info_shows_head_training_and_real_song_cv_beside_gtzan(capsys) -> None:
    """The musicnn built-in: its head in words (not "head ?"), its training data as counts with names
    (not a Python dict), and the stored real-song CV figures next to GTZAN's test split."""
    meta = read_model_meta(HEAD_PATH)
    assert main(["info", "musicnn"]) == 0
    out = capsys.readouterr().out
    head = next(line for line in out.splitlines() if line.startswith("head:"))
    assert meta["training"]["config"]["model"] in head and "?" not in head
    trained = next(line for line in out.splitlines() if line.startswith("trained on:"))
    assert "{" not in trained and "blues 22" in trained and "other 98" in trained and "124 songs of gtzan" in trained
    m = meta["metrics"]
    cv, gtzan = m["cv"], m["test_track"]
    line = next(x for x in out.splitlines() if x.startswith("grouped CV:"))
    assert f"accuracy {cv['accuracy']:.3f}" in line and f"macro-F1 {cv['macro_f1']:.3f}" in line
    assert f"{gtzan['n']} tracks of the fault-filtered test split, accuracy {gtzan['accuracy']:.3f}" in out
    lo, hi = m["other_caught_ci95_over_groups"]
    assert f"{m['other_caught']:.1%} [{lo:.0%}-{hi:.0%}] of songs outside the labels answered 'other'" in out
    assert "_ci95_over_groups" not in out  # said in words above, not dumped raw
    for name, r in m["cv_components"].items():  # each part beside the model, on the same folds
        assert any(x.strip().startswith(name) and f"{r['accuracy']:.3f}" in x for x in out.splitlines())
    assert "checksum verified" in out


def _damaged_copies(src: Path, folder: Path) -> list[Path]:
    """Copies of a model file truncated at, and with one byte flipped at, offsets spread over the
    whole file (the 8-byte length, the JSON header, the tensors, the last byte)."""
    data = src.read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    offsets = sorted({0, 3, 7, 8, 9, 100, header_end // 2, header_end - 1, header_end, header_end + 1,
                      len(data) - 1, *range(0, len(data), len(data) // 24)})
    out = []
    for off in offsets:
        t = folder / f"cut-{off}.safetensors"
        t.write_bytes(data[:off])
        flipped = bytearray(data)
        flipped[off] ^= 0x5A
        f = folder / f"flip-{off}.safetensors"
        f.write_bytes(bytes(flipped))
        out += [t, f]
    return out


def test_info_on_damaged_model_files_is_one_line_and_exit_1(tmp_path: Path, capsys) -> None:
    """Whatever the damage, `genrekit info` never crashes and never shows a damaged file as
    healthy: one error line naming the file, exit 1, nothing on stdout."""
    copies = _damaged_copies(HEAD_PATH, tmp_path)
    assert len(copies) > 50
    for path in copies:
        rc = main(["info", str(path)])
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert rc == 1 and out == "", (path.name, out[:200])
        assert len(lines) == 1 and lines[0].startswith("genrekit: error: ") and path.name in lines[0], (path.name, err)
        assert "Traceback" not in err


def test_info_verifies_the_checksum(tmp_path: Path, capsys) -> None:
    """A tensor byte changed in place (the header still parses) is refused by its checksum."""
    meta = {"format": "genrekit-torch", "labels": ["a", "b"], "config": {"arch": "fnn"},
            "spec": {"kind": "mfcc_stats", "sample_rate": 16000}, "metrics": {}}
    path = save_model_file(tmp_path / "m.safetensors", {"w": torch.arange(64, dtype=torch.float32)}, meta)
    assert main(["info", str(path)]) == 0 and "checksum verified" in capsys.readouterr().out
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # inside the last float: still a valid safetensors file
    path.write_bytes(bytes(data))
    assert main(["info", str(path)]) == 1
    err = capsys.readouterr().err
    assert "damaged file" in err and "checksum" in err and err.count("\n") == 1
