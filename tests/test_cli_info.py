"""`genrekit info`: a model file's labels, feature settings and metrics, from its header alone."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from genrekit.cli.main import main
from genrekit.models.default import GENRES, HEAD_PATH
from genrekit.models.modelfile import read_model_meta, save_model_file


def test_info_on_the_default_model(capsys) -> None:
    meta = read_model_meta(HEAD_PATH)
    assert main(["info", "--confusion"]) == 0
    out = capsys.readouterr().out
    assert f"labels (10): {', '.join(GENRES)}" in out
    assert "musicnn_mfcc: 22050 Hz, mono" in out  # what predict applies to every input
    acc = meta["metrics"]["test_track"]["accuracy"]
    assert f"test_track           accuracy {acc:.4f}" in out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] and line.split()[0] in GENRES]
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
