"""The contract other checks rely on: `genrekit train|evaluate|compare|sweep` and metrics.json keys."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import soundfile as sf

from genrekit.cli.main import main

from .conftest import tone

FAST = ["--epochs", "2", "--quiet", "--threads", "1"]


def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def test_train_on_notebook_arrays(shared_data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "fnn"
    old = os.umask(0o022)
    try:
        assert main(["train", "--model", "fnn", "--data", str(shared_data / "seed-mfcc"), "--out", str(out),
                     *FAST]) == 0
    finally:
        os.umask(old)
    m = _metrics(out)
    assert 0 <= m["test"]["accuracy"] <= 1 and 0 <= m["test"]["macro_f1"] <= 1 and m["test"]["n"] == 1376
    assert "test_track" not in m  # notebook segments carry no track ids
    # ... so they are counted as segments, not as "3200 tracks"
    assert "train 3200 segments, val 800 segments, test 1376 segments (no track ids)" in capsys.readouterr().out
    assert json.loads((out / "data_summary.json").read_text())["splits"]["train"]["tracks"] is None
    for f in ("model.safetensors", "history.csv", "history.json", "training_curve.png", "test_metrics.json",
              "test_metrics_confusion.png", "data_summary.json", "metrics.json"):
        assert (out / f).is_file(), f
        assert stat.S_IMODE((out / f).stat().st_mode) == 0o644, f  # the user's umask, not 0600
    assert not (out / "checkpoint.safetensors").exists()  # deleted after success (--keep-checkpoint keeps it)
    ev = tmp_path / "eval"
    assert main(["evaluate", "--model", str(out), "--data", str(shared_data / "seed-mfcc"), "--out", str(ev),
                 "--quiet"]) == 0
    assert _metrics(ev)["test"]["accuracy"] == pytest.approx(m["test"]["accuracy"])


def test_train_on_features_csv_scores_tracks(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "csv"
    assert main(["train", "--model", "fnn", "--data", str(shared_data / "gtzan-features" / "features_30_sec.csv"),
                 "--splits", str(shared_data / "gtzan-splits"), "--out", str(out), *FAST]) == 0
    m = _metrics(out)
    assert m["unit"] == "track" and m["test"]["n"] == 290 and m["test_track"]["n"] == 290


def _tone_folder(root: Path, per_genre: int, seconds: float) -> Path:
    """<root>/{low,high}/*.wav: two 'genres' of synthetic tones, told apart by pitch."""
    for gi, genre in enumerate(("low", "high")):
        (root / genre).mkdir(parents=True)
        for i in range(per_genre):
            sf.write(root / genre / f"{genre}{i}.wav", tone(seconds, freq=100 + 900 * gi + 13 * i), 22050)
    return root


def test_train_on_audio_folder_skips_bad_file(tmp_path: Path, capsys) -> None:
    root = _tone_folder(tmp_path / "music", 5, 3.0)
    (root / "low" / "bad.wav").write_bytes(b"not audio at all")
    out = tmp_path / "run"
    rc = main(["train", "--model", "fnn", "--data", str(root), "--out", str(out), "--val-fraction", "0.2",
               "--test-fraction", "0.2", "--workers", "1", *FAST])
    assert rc == 0
    assert "bad.wav" in capsys.readouterr().err
    m = _metrics(out)
    assert {"test", "test_track", "val_track"} <= set(m)
    summary = json.loads((out / "data_summary.json").read_text())
    assert [Path(s["path"]).name for s in summary["skipped"]] == ["bad.wav"]
    # the model carries its spec: evaluate the same folder with it (all files, no split given)
    ev = tmp_path / "ev"
    assert main(["evaluate", "--model", str(out / "model.safetensors"), "--data", str(root), "--out", str(ev),
                 "--workers", "1", "--quiet"]) == 0
    assert _metrics(ev)["test_track"]["n"] == 10


def test_cnn_train_cli_on_audio(tmp_path: Path) -> None:
    root = tmp_path / "music"
    for gi, genre in enumerate(("low", "high")):
        (root / genre).mkdir(parents=True)
        for i in range(3):
            sf.write(root / genre / f"{genre}{i}.wav", tone(4.0, freq=100 + 900 * gi + 13 * i), 22050)
    out = tmp_path / "cnn"
    assert main(["train", "--model", "cnn", "--data", str(root), "--out", str(out), "--n-mels", "32",
                 "--segment-seconds", "1", "--hop-seconds", "1", "--val-fraction", "0.34", "--test-fraction", "0.34",
                 "--workers", "1", *FAST]) == 0
    from genrekit.models.base import load_model

    model = load_model(out)
    assert model.spec.n_mels == 32 and model.config["arch"] == "cnn" and "test_track" in model.metrics


def test_resume_flag(shared_data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "r"
    args = ["train", "--model", "fnn", "--data", str(shared_data / "seed-mfcc"), "--out", str(out),
            "--threads", "1", "--patience", "0"]
    assert main([*args, "--epochs", "2", "--quiet", "--keep-checkpoint"]) == 0
    assert (out / "checkpoint.safetensors").is_file()
    assert main([*args, "--epochs", "3", "--resume"]) == 0  # a finished run, trained one epoch longer
    hist = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert "resuming from epoch 2" in capsys.readouterr().out
    assert not (out / "checkpoint.safetensors").exists()  # this run did not ask to keep it
    assert main([*args, "--epochs", "1", "--resume"]) == 0
    assert f"no checkpoint in {out}" in capsys.readouterr().out  # says why it starts over


def test_epoch_lines_give_time_and_eta(shared_data: Path, tmp_path: Path, capsys) -> None:
    import re

    assert main(["train", "--model", "fnn", "--data", str(shared_data / "seed-mfcc"), "--out", str(tmp_path / "e"),
                 "--epochs", "3", "--patience", "0", "--threads", "1"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch")]
    assert len(lines) == 3
    assert re.search(r"^epoch   1/3 .* \d+\.\ds, ETA \d+:\d\d", lines[0]), lines[0]  # no early stop: exact ETA
    assert re.search(r" \d+\.\ds( +\*)?$", lines[2]), lines[2]  # the last epoch has nothing left to estimate


def test_compare_and_sweep_tables(shared_data: Path, tmp_path: Path) -> None:
    csv = str(shared_data / "gtzan-features" / "features_30_sec.csv")
    splits = str(shared_data / "gtzan-splits")
    assert main(["compare", "--data", csv, "--splits", splits, "--models", "fnn,fnn:mfcc_stats", "--out",
                 str(tmp_path / "c"), "--second-view", *FAST]) == 0
    rows = json.loads((tmp_path / "c" / "comparison.json").read_text())
    assert len(rows) == 2 and "test_track" in rows[0] and "val+test" in rows[0]
    assert (tmp_path / "c" / "comparison.md").read_text().startswith("| model |")
    assert main(["sweep", "--data", csv, "--splits", splits, "--optimizers", "adam,sgd", "--activations", "relu,tanh",
                 "--schedulers", "cosine", "--no-save-runs", "--out", str(tmp_path / "s"), *FAST]) == 0
    rows = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert len(rows) == 4 and {"accuracy", "macro_f1", "best_epoch", "seconds"} <= set(rows[0])
    assert "| optimizer |" in (tmp_path / "s" / "sweep.md").read_text()


def test_evaluate_default_model_on_taggrams(shared_data: Path, tmp_path: Path, capsys) -> None:
    from genrekit.models.base import load_model

    try:
        load_model("default")
    except Exception as exc:  # the default model is another module's; skip until it is there
        pytest.skip(f"default model unavailable: {exc}")
    out = tmp_path / "d"
    npz = str(shared_data / "gtzan-musicnn" / "msd_taggram_test.npz")
    assert main(["evaluate", "--model", "musicnn", "--data", npz, "--out", str(out), "--quiet"]) == 0
    m = _metrics(out)
    assert m["test_track"]["n"] == 290 and m["test_track"]["accuracy"] > 0.5
    # the default reads mn04's outputs from audio: stored MSD taggrams are refused in one line
    assert main(["evaluate", "--model", "default", "--data", npz, "--out", str(tmp_path / "e"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--model musicnn" in err[0] and "msd_taggram_test.npz" in err[0]


def test_user_errors_are_one_line(tmp_path: Path, capsys) -> None:
    assert main(["train", "--model", "fnn", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("genrekit: error:") and "missing" in err and "Traceback" not in err


def test_parser_choices_match_the_library() -> None:
    from genrekit.cli import train as cli_train
    from genrekit.models.notebook import ACTIVATIONS
    from genrekit.training import OPTIMIZERS, SCHEDULERS

    assert set(cli_train.ACTIVATIONS) == set(ACTIVATIONS)
    assert cli_train.OPTIMIZERS == OPTIMIZERS and cli_train.SCHEDULERS == SCHEDULERS


def test_restarts_keep_best_validation_run(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "rs"
    csv = str(shared_data / "gtzan-features" / "features_30_sec.csv")
    assert main(["train", "--model", "fnn", "--data", csv, "--splits", str(shared_data / "gtzan-splits"),
                 "--restarts", "2", "--out", str(out), *FAST]) == 0
    m = _metrics(out)
    assert [r["seed"] for r in m["restarts"]] == [0, 1]
    assert m["val"]["macro_f1"] == max(r["val"]["macro_f1"] for r in m["restarts"])
    assert (out / "model.safetensors").is_file() and (out / "restarts.json").is_file()


@pytest.mark.parametrize("argv, message", [
    (["sweep", "--optimizers", "adam,foo"], "--optimizers adam,foo: unknown foo; choose from sgd"),
    (["sweep", "--activations", "relu,nope"], "--activations relu,nope: unknown nope"),
    (["sweep", "--lrs", "1e-3,x"], "--lrs 1e-3,x: use comma-separated numbers"),
    (["compare", "--models", "fnn:mfcc,rnn:mfcc"], "unknown model 'rnn' in 'rnn:mfcc'"),
    (["compare", "--models", "fnn:foo"], "unknown features 'foo' in 'fnn:foo'"),
    (["train", "--model", "cnn", "--features", "mfcc"], "--features mfcc: the cnn reads 2-D log-mel segments"),
])
def test_bad_grids_and_pairs_fail_before_anything_is_written(tmp_path: Path, capsys, argv, message) -> None:
    """Values are checked before the first model trains (and before --out is created)."""
    data = tmp_path / "music"
    (data / "a").mkdir(parents=True)
    out = tmp_path / "out"
    assert main([*argv, "--data", str(data), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_cnn_on_feature_vectors_is_a_one_line_error(shared_data: Path, tmp_path: Path, capsys) -> None:
    csv = shared_data / "gtzan-features" / "features_30_sec.csv"
    assert main(["train", "--model", "cnn", "--data", str(csv), "--out", str(tmp_path / "o")]) == 1
    assert "the cnn reads 2-D log-mel segments of audio, this data holds feature vectors" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value", [("--epochs", "0"), ("--batch-size", "0"), ("--lr", "-1"),
                                         ("--hidden", "abc"), ("--dropout", "1.5"), ("--val-fraction", "1")])
def test_out_of_range_options_are_refused_by_the_parser(tmp_path: Path, capsys, flag, value) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--model", "fnn", "--data", str(tmp_path), "--out", str(tmp_path / "o"), flag, value])
    assert exc.value.code == 2 and f"argument {flag}:" in capsys.readouterr().err


def test_sweep_without_a_test_split(tmp_path: Path, capsys) -> None:
    """--test-fraction 0: the progress line says so instead of failing on a missing score."""
    root = _tone_folder(tmp_path / "music", 4, 2.0)
    rc = main(["sweep", "--model", "fnn", "--data", str(root), "--optimizers", "adam", "--test-fraction", "0",
               "--val-fraction", "0.25", "--workers", "1", "--no-save-runs", "--out", str(tmp_path / "sw"), *FAST])
    assert rc == 0 and "no test split" in capsys.readouterr().out
