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
    assert all(r["genre"] in r["probabilities"] and "segments" not in r for r in recs)  # only with --segments
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
    from genrekit.units import format_clock as _fmt_clock

    hop = 61 * 256 / 16000
    shown = [_fmt_clock(i * hop) for i in range(40)]
    assert len(set(shown)) == len(shown)
    assert _fmt_clock(19.52) == "0:19.5" and _fmt_clock(20.496) == "0:20.5"
    assert _fmt_clock(3725.04) == "1:02:05.0" and _fmt_clock(59.96) == "1:00.0"


# ------------------------------------------------------------------ timelines, records of failures


def test_timeline_failure_fails_that_input_only(toy_default, clips, tmp_path, monkeypatch, capsys):
    """A timeline that cannot be drawn is one error line for its input; the next input still gets
    its row and PNG, and the exit code says something failed."""
    import genrekit.timeline as timeline

    real = timeline.plot_timeline

    def flaky(pred, path):
        if pred.input == str(clips[0]):
            raise TypeError("set_text(): incompatible function arguments.\n    1. (self: FT2Font, ...)")
        return real(pred, path)

    monkeypatch.setattr(timeline, "plot_timeline", flaky)
    tl = tmp_path / "tl"
    assert main(["predict", "--timeline", str(tl), *map(str, clips)]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"genrekit: error: {clips[0]}: cannot write timeline (TypeError: set_text(): incompatible function arguments.)",
        "genrekit: 1 of 2 inputs failed",
    ]
    assert str(clips[0]) not in out and str(clips[1]) in out  # failed input: no prediction row
    assert [p.name for p in tl.glob("*.png")] == [clips[1].stem + ".png"]


def test_timeline_title_survives_odd_file_names(toy_default, tmp_path, capsys):
    """Names that are not UTF-8 (surrogate-escaped by Python) or hold matplotlib's '$' math markup
    used to make the title raise; now every input gets its PNG."""
    from .conftest import tone

    folder = tmp_path / "music"
    folder.mkdir()
    sf.write(folder / "plain.wav", tone(3.0), 22050)
    os.rename(folder / "plain.wav", os.path.join(os.fsencode(folder), b"bad\xffname.wav"))
    sf.write(folder / "x$\\frac$.wav", tone(3.0, freq=330.0), 22050)
    tl = tmp_path / "tl"
    assert main(["predict", "--timeline", str(tl), str(folder)]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in tl.glob("*.png")) == ["bad_name.png", "x_frac.png"]
    # captured stdout is strict UTF-8, like a terminal under en_US.UTF-8: the row shows U+FFFD
    assert "bad\ufffdname.wav" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["file", "below-a-file"])
def test_timeline_dir_that_cannot_be_made_fails_up_front(toy_default, clips, tmp_path, capsys, kind):
    (tmp_path / "taken").write_text("a file, not a folder")
    target = tmp_path / "taken" if kind == "file" else tmp_path / "taken" / "sub"
    assert main(["predict", "--timeline", str(target), str(clips[0])]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # nothing was predicted
    assert len(err.splitlines()) == 1 and err.startswith(f"genrekit: error: {target}: ")
    assert "Traceback" not in err


def test_failed_inputs_keep_a_record_in_jsonl_and_csv(toy_default, clips, tmp_path, capsys):
    missing = str(tmp_path / "missing.wav")
    assert main(["predict", "--format", "jsonl", str(clips[0]), missing]) == 1
    out, err = capsys.readouterr()
    recs = [json.loads(line) for line in out.splitlines()]
    assert [r["input"] for r in recs] == [str(clips[0]), missing]
    assert "error" not in recs[0] and recs[1] == {"input": missing, "error": "no such file"}
    assert f"genrekit: error: {missing}: no such file" in err.splitlines()  # stderr unchanged

    assert main(["predict", "--format", "csv", str(clips[0]), missing]) == 1
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["input"] for r in rows] == [str(clips[0]), missing]
    assert rows[0]["error"] == "" and rows[0]["genre"]
    assert rows[1]["error"] == "no such file" and rows[1]["genre"] == rows[1]["confidence"] == ""
    assert None not in rows[1] and None not in rows[1].values()  # as many fields as the header


def test_csv_segments_carry_the_track_genre(toy_default, clips, capsys):
    assert main(["predict", "--format", "jsonl", "--segments", str(clips[0])]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["segments"]
    assert main(["predict", "--format", "csv", "--segments", str(clips[0])]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == len(rec["segments"])
    assert {r["track_genre"] for r in rows} == {rec["genre"]}
    assert [r["genre"] for r in rows] == [s["genre"] for s in rec["segments"]]


def test_folders_skip_hidden_names_but_named_inputs_are_read(toy_default, tmp_path, capsys):
    from .conftest import tone

    folder = tmp_path / "album"
    (folder / ".hidden").mkdir(parents=True)
    sf.write(folder / "song.wav", tone(3.0), 22050)
    sf.write(folder / ".hidden" / "old.wav", tone(3.0), 22050)
    (folder / "._song.wav").write_bytes(b"\x00\x05\x16\x07 AppleDouble sidecar, not audio")
    assert main(["predict", "--format", "jsonl", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["input"] for line in out.splitlines()] == [str(folder / "song.wav")] and err == ""
    assert main(["predict", str(folder / "._song.wav")]) == 1  # named on the command line: read, and refused
    assert capsys.readouterr().err.startswith(f"genrekit: error: {folder / '._song.wav'}: ")


def test_table_model_refused_before_any_input(tmp_path, clips, capsys):
    from .test_prediction import table_model

    path = table_model().save(tmp_path / "table.safetensors")
    assert main(["predict", "--model", str(path), str(clips[0]), str(clips[1])]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"genrekit: error: {path}: this model was trained on a precomputed table and cannot read audio\n"


def test_url_caps_take_zero_for_no_limit():
    """--max-size / --max-duration 0 switch the URL caps off (as before they were range-checked);
    negative values are refused by the parser."""
    from genrekit.cli.main import build_parser

    args = build_parser().parse_args(["predict", "x.wav", "--max-size", "0", "--max-duration", "0"])
    assert args.max_size == 0 and args.max_duration == 0
    for flag in ("--max-size", "--max-duration", "--top-tags"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["predict", "x.wav", flag, "-1"])
