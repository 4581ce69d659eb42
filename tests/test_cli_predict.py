"""``genrekit predict``: formats, folders, timelines, and one stderr line per bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import genrekit.prediction as prediction
from genrekit.cli.main import main

from .predict_toy import LocalServer, ToyModel, default_model_available
from .test_prediction import _bad_inputs


@pytest.fixture()
def toy_default(monkeypatch):
    """`--model` omitted -> load_model(None): answer with the toy model for fast in-process tests."""
    calls = []

    def fake(ref=None):
        calls.append(ref)
        return ToyModel()

    monkeypatch.setattr(prediction, "load_model", fake)
    return calls


@pytest.fixture(scope="module")
def clips(gtzan_clips):
    return [sorted((gtzan_clips / g).glob("*.wav"))[0] for g in ("jazz", "metal")]


def test_table_default_model_used_once(toy_default, clips, capsys):
    assert main(["predict", *map(str, clips)]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["input", "genre", "conf", "duration"]
    assert len(lines) == 3 and all(str(c) in out for c in clips)
    assert err == ""
    assert toy_default == [None]  # default model, loaded once for the batch


def test_jsonl_and_csv(toy_default, clips, capsys):
    assert main(["predict", "--format", "jsonl", *map(str, clips)]) == 0
    recs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["input"] for r in recs] == list(map(str, clips))
    assert all(r["genre"] in r["probabilities"] and r["segments"] for r in recs)
    assert main(["predict", "--format", "csv", *map(str, clips)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 2 and rows[0]["input"] == str(clips[0])
    assert abs(sum(float(v) for k, v in rows[0].items() if k.startswith("p_")) - 1) < 1e-3
    assert main(["predict", "--format", "csv", "--segments", str(clips[0])]) == 0
    seg_rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(seg_rows) > 20 and float(seg_rows[1]["start_s"]) > float(seg_rows[0]["start_s"])


def test_folder_and_timelines(toy_default, gtzan_clips, tmp_path, capsys):
    folder = tmp_path / "music" / "sub"
    folder.mkdir(parents=True)
    src = sorted((gtzan_clips / "pop").glob("*.wav"))[0]
    y, sr = sf.read(src, dtype="float32", frames=22050 * 5)
    sf.write(folder / "a.flac", y, sr)
    sf.write(folder.parent / "b.wav", y, sr)
    (folder / "cover.jpg").write_bytes(b"\xff\xd8 not audio")
    tl = tmp_path / "tl"
    assert main(["predict", "--timeline", str(tl), "--segments", str(tmp_path / "music")]) == 0
    out = capsys.readouterr().out
    assert "a.flac" in out and "b.wav" in out and "cover.jpg" not in out
    assert sorted(p.name for p in tl.glob("*.png")) == ["a.png", "b.png"]


def test_bad_inputs_one_line_each_and_batch_continues(toy_default, clips, tmp_path, capsys):
    bad = _bad_inputs(tmp_path, clips[0])
    www = tmp_path / "www"
    www.mkdir()
    sf.write(www / "big.wav", np.tile(np.sin(np.arange(8000) / 3).astype(np.float32), 30), 8000)
    srv = LocalServer(www)
    try:
        urls = [f"{srv.url}/nothing.mp3", f"{srv.url}/page", f"{srv.url}/big.wav"]
        inputs = [str(clips[0]), *map(str, bad.values()), *urls, str(clips[1])]
        rc = main(["predict", "--max-size", "0.1", *inputs])
    finally:
        srv.close()
    out, err = capsys.readouterr()
    assert rc == 1
    assert str(clips[0]) in out and str(clips[1]) in out  # the batch went on past every failure
    lines = err.strip().splitlines()
    failing = [*map(str, bad.values()), *urls]
    assert len(lines) == len(failing) + 1 and lines[-1] == f"genrekit: {len(failing)} of {len(inputs)} inputs failed"
    for line, name in zip(lines, failing, strict=False):
        assert line.startswith(f"genrekit: error: {name}: "), line
    assert "404" in lines[len(bad)] and "web page" in lines[len(bad) + 1] and "too large" in lines[len(bad) + 2]
    assert "Traceback" not in err


def test_all_good_exit_zero_and_missing_folder_content(toy_default, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(tmp_path / "empty")]) == 1
    assert "folder holds no audio files" in capsys.readouterr().err


@pytest.mark.skipif(not default_model_available(), reason="default model not available")
def test_subprocess_default_model(clips, tmp_path):
    """The real command, as a user runs it: default model, real stderr, no traceback."""
    (tmp_path / "bad.wav").write_text("nope")
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    r = subprocess.run([sys.executable, "-m", "genrekit.cli.main", "predict", "--format", "jsonl",
                        str(clips[0]), str(tmp_path / "bad.wav")],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 1, r.stderr
    rec = json.loads(r.stdout.strip().splitlines()[0])
    assert rec["genre"] in rec["probabilities"] and rec["tags"]
    assert r.stderr.strip().splitlines()[0].startswith(f"genrekit: error: {tmp_path / 'bad.wav'}: ")
    assert "Traceback" not in r.stderr


def test_segment_clock_shows_tenths():
    """Segments ~0.98 s apart (the default model's 1 s grid) must not print the same time twice."""
    from genrekit.cli.predict import _fmt_clock

    hop = 61 * 256 / 16000
    shown = [_fmt_clock(i * hop) for i in range(40)]
    assert len(set(shown)) == len(shown)
    assert _fmt_clock(19.52) == "0:19.5" and _fmt_clock(20.496) == "0:20.5"
    assert _fmt_clock(3725.04) == "1:02:05.0" and _fmt_clock(59.96) == "1:00.0"
