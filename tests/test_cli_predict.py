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
from genrekit.datasets import clips_in

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
    return [clips_in(gtzan_clips, g)[0] for g in ("jazz", "metal")]


def shown(path) -> str:
    """How the table shows an input: names past NAME_WIDTH characters are cut in the middle, so a
    clone at a long path still finds its rows."""
    from genrekit.cli.predict import NAME_WIDTH, middle_ellipsis

    return middle_ellipsis(str(path), NAME_WIDTH)


def test_table_default_model_used_once(toy_default, clips, capsys):
    assert main(["predict", *map(str, clips)]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["input", "genre", "conf", "duration"]
    assert len(lines) == 3 and all(shown(c) in out for c in clips)
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
    src = clips_in(gtzan_clips, "pop")[0]
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
    assert shown(clips[0]) in out and shown(clips[1]) in out  # the batch went on past every failure
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
    assert shown(clips[0]) not in out and shown(clips[1]) in out  # failed input: no prediction row
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


# ------------------------------------------------------- paths of any length, formats other tools read


def test_long_paths_keep_the_table_in_line(toy_default, tmp_path, capsys):
    """A user's path is not CI's path: in a deliberately deep temporary folder (well past the
    table's 60-character column) each name is shortened in the middle for the table only, so
    every row's columns start where the header's do; JSON keeps the whole path."""
    from genrekit.cli.predict import NAME_WIDTH

    from .conftest import tone

    deep = tmp_path.joinpath(*(["a-rather-long-folder-name-for-a-music-library"] * 4), "Ünïcödé Söng")
    deep.mkdir(parents=True)
    songs = [deep / "first song.wav", deep / "second.wav"]
    for i, s in enumerate(songs):
        sf.write(s, tone(3.0, freq=300.0 + 200 * i), 22050)
    assert len(str(songs[0])) > 200
    assert main(["predict", str(deep), str(songs[0])]) == 0
    out, err = capsys.readouterr()
    header, *rows = out.splitlines()
    assert err == "" and len(rows) == 3
    genre_col = header.index("genre")
    assert genre_col == NAME_WIDTH + 2
    for row, song in zip(rows, [*songs, songs[0]], strict=True):
        name = row[:NAME_WIDTH]
        assert "..." in name and row[NAME_WIDTH:genre_col] == "  " and row[genre_col] != " "
        head, tail = name.split("...")
        assert str(song).startswith(head) and str(song).endswith(tail.rstrip())  # start and end kept
    assert main(["predict", "--format", "json", str(deep)]) == 0
    assert [r["input"] for r in json.loads(capsys.readouterr().out)] == list(map(str, songs))


def test_middle_ellipsis():
    from genrekit.cli.predict import middle_ellipsis

    assert middle_ellipsis("short.mp3", 60) == "short.mp3"
    cut = middle_ellipsis("/home/me/" + "x" * 100 + "/The Song.mp3", 30)
    assert len(cut) == 30 and cut.startswith("/home/me/") and cut.endswith("The Song.mp3") and "..." in cut


def test_table_writes_no_header_when_every_input_fails(toy_default, tmp_path, capsys):
    """A run where nothing could be read leaves stdout empty: a lone header reads as "no genres"."""
    assert main(["predict", str(tmp_path / "missing.wav"), str(tmp_path / "gone.flac")]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "missing.wav" in err and "gone.flac" in err


def test_mistyped_option_gets_predicts_usage_and_a_hint(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["predict", "song.mp3", "--fromat", "json"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: genrekit predict ")  # the command's usage, not the top level's
    assert "did you mean --format" in err and "--fromat" in err


def test_other_answer_shows_its_own_certainty_in_the_table(capsys):
    """For "other" the table's percent is 1 - in_set (how sure the model is the song is none of
    its genres), and the nearest genre is named with its own probability."""
    from genrekit.cli.predict import _Writer
    from genrekit.prediction import Prediction

    probs = {"blues": 0.2, "jazz": 0.7, "rock": 0.1}
    pred = Prediction("song.mp3", "other", 0.88, probs, 200.0, [], None, "m", nearest="jazz", in_set=0.12,
                      style="electronic, dance")
    lines: list[str] = []
    w = _Writer("table", sys.stdout, list(probs), False, lines.append)
    w.header(["song.mp3"])
    w.write(pred)
    assert lines[1].split()[1:3] == ["other", "88%"]
    assert "88% sure of that" in lines[2] and "nearest: jazz (70%" in lines[2]


def test_table_shows_confidence_as_percent(toy_default, clips, capsys):
    assert main(["predict", "--format", "jsonl", str(clips[0])]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert main(["predict", "--segments", str(clips[0])]) == 0
    out = capsys.readouterr().out.splitlines()
    row = out[1].split()
    assert row[1] == rec["genre"] and row[2] == f"{rec['confidence'] * 100:.0f}%"
    assert row[3] == "0:30"  # duration as m:ss, as the demo shows it
    assert out[2].split()[-1].endswith("%")  # segment lines too


def test_records_have_hf_labels_sorted_by_score(toy_default, clips, capsys):
    assert main(["predict", "--format", "jsonl", str(clips[0])]) == 0
    rec = json.loads(capsys.readouterr().out)
    labels = rec["labels"]
    assert [x["score"] for x in labels] == sorted((x["score"] for x in labels), reverse=True)
    assert {x["label"]: x["score"] for x in labels} == rec["probabilities"]  # probabilities kept as they were
    assert labels[0] == {"label": rec["genre"], "score": rec["confidence"]}
    assert set(labels[0]) == {"label", "score"}


def test_json_format_is_one_array_with_failures_as_records(toy_default, clips, tmp_path, capsys):
    missing = str(tmp_path / "missing.wav")
    assert main(["predict", "--format", "json", str(clips[0]), missing, str(clips[1])]) == 1
    recs = json.loads(capsys.readouterr().out)
    assert [r["input"] for r in recs] == [str(clips[0]), missing, str(clips[1])]
    assert recs[1] == {"input": missing, "error": "no such file"} and "segments" not in recs[0]
    assert main(["predict", "--format", "json", "--segments", str(clips[0])]) == 0
    assert json.loads(capsys.readouterr().out)[0]["segments"]


def test_stdin_list_of_inputs(toy_default, clips, tmp_path, capsys, monkeypatch):
    """`find ... | genrekit predict -`: each stdin line is one input, blank lines skipped, mixed
    with inputs named on the command line."""
    missing = str(tmp_path / "missing.wav")
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{clips[0]}\n\n{missing}\r\n"))
    assert main(["predict", "--format", "jsonl", "-", str(clips[1])]) == 1
    out, err = capsys.readouterr()
    assert [json.loads(line)["input"] for line in out.splitlines()] == [str(clips[0]), missing, str(clips[1])]
    assert err.splitlines()[0] == f"genrekit: error: {missing}: no such file"
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["predict", "-"]) == 1
    assert capsys.readouterr().err == "genrekit: error: -: stdin held no inputs\n"


def test_records_name_their_timeline_png(toy_default, clips, tmp_path, capsys):
    tl = tmp_path / "tl"
    assert main(["predict", "--format", "jsonl", "--timeline", str(tl), *map(str, clips)]) == 0
    recs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["timeline"] for r in recs] == [str(tl / f"{c.stem}.png") for c in clips]
    assert all(os.path.isfile(r["timeline"]) for r in recs)
    assert main(["predict", "--format", "csv", "--timeline", str(tl), str(clips[0])]) == 0
    row = next(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert row["timeline"] == str(tl / f"{clips[0].stem}.png") and row["error"] == ""  # a new run replaces it
    assert main(["predict", "--format", "jsonl", str(clips[0])]) == 0
    assert "timeline" not in json.loads(capsys.readouterr().out)  # no --timeline, no field


def test_timeline_pngs_get_the_users_umask(toy_default, clips, tmp_path, capsys):
    import stat

    old = os.umask(0o022)
    try:
        assert main(["predict", "--timeline", str(tmp_path / "tl"), str(clips[0])]) == 0
    finally:
        os.umask(old)
    png = next((tmp_path / "tl").glob("*.png"))
    assert stat.S_IMODE(png.stat().st_mode) == 0o644


def test_progress_inside_a_long_input(toy_default, tmp_path, capfd):
    """An input longer than one block gets a second bar over its seconds (here blocks of 4 s),
    drawn on the real stderr although decoding runs with file descriptor 2 silenced (capfd
    captures at the descriptor, as a terminal would see it)."""
    from .conftest import tone

    song = tmp_path / "long.wav"
    sf.write(song, tone(30.0), 22050)
    assert main(["predict", "--progress", "--block-seconds", "4", str(song)]) == 0
    out, err = capfd.readouterr()
    assert song.name in out and "audio" in err and "/30" in err
    assert main(["predict", "--block-seconds", "4", str(song)]) == 0  # no terminal, no --progress: no bar
    assert capfd.readouterr().err == ""


def test_help_shows_no_progress_and_duration_units(capsys):
    from genrekit.cli.main import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["predict", "--help"])
    text = capsys.readouterr().out
    assert "--no-progress" in text and "20m" in text


@pytest.mark.parametrize("command,option", [
    (["predict", "x.wav"], "--max-duration"), (["predict", "x.wav"], "--timeout"),
    (["predict", "x.wav"], "--download-timeout"), (["serve"], "--max-duration"), (["serve"], "--request-timeout"),
    (["batch", "x.wav", "--out", "o"], "--max-duration"), (["batch", "x.wav", "--out", "o"], "--timeout"),
    (["batch", "x.wav", "--out", "o"], "--part-seconds")])
def test_every_duration_option_reads_the_same_text(command, option):
    """One parser for every command: a bare number is seconds (batch --max-duration used to read
    minutes), units as written."""
    from genrekit.cli.main import build_parser

    dest = option.lstrip("-").replace("-", "_")

    def parse(value: str) -> float:
        return getattr(build_parser().parse_args([*command, option, value]), dest)

    assert parse("90") == parse("90s") == 90.0
    assert parse("20m") == 1200.0 and parse("1h30m") == 5400.0
    for bad in ("-1", "ten", "1h30"):
        with pytest.raises(SystemExit):
            parse(bad)


def test_batch_takes_durations_with_units():
    from genrekit.cli.main import build_parser

    args = build_parser().parse_args(["batch", "DIR", "--out", "OUT", "--max-duration", "20m", "--timeout", "30s"])
    assert args.max_duration == 1200.0 and args.timeout == 30.0
    demo = [build_parser().parse_args(["demo", "--seconds", v]).seconds for v in ("90", "90s", "2m")]
    assert demo == [90.0, 90.0, 120.0]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--seconds", "11m"])  # the demo's range: 1 s to 10 minutes


def test_error_lines_name_no_python_classes(toy_default, tmp_path, capsys):
    """A user reads "not a readable audio file", not "(InvalidDataError)"."""
    bad = tmp_path / "notes.mp3"
    bad.write_bytes(b"this is not audio at all " * 40)
    half = tmp_path / "half.flac"
    from .conftest import tone

    sf.write(half, tone(3.0), 22050)
    half.write_bytes(half.read_bytes()[:2000])
    assert main(["predict", str(bad), str(half)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"genrekit: error: {bad}: not a readable audio file"
    for line in err:
        assert "Error)" not in line and "Error:" not in line, line


def test_timeline_names_keep_unicode_letters(toy_default, tmp_path, capsys):
    """"Ünïcödé Söng" used to become n_c_d_S_ng.png; only what is unsafe in a file name goes."""
    import unicodedata

    from genrekit.timeline import safe_stem

    from .conftest import tone

    folder = tmp_path / "music"
    folder.mkdir()
    names = ["Ünïcödé Söng.wav", "日本語の歌.wav", unicodedata.normalize("NFD", "école.wav"), "-rf $(x).wav"]
    for i, n in enumerate(names):
        sf.write(folder / n, tone(3.0, freq=300.0 + 50 * i), 22050)
    tl = tmp_path / "tl"
    assert main(["predict", "--timeline", str(tl), str(folder)]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in tl.glob("*.png")) == sorted(
        ["Ünïcödé Söng.png", "日本語の歌.png", "école.png", "rf _(x).png"])
    assert safe_stem("x\x00y\\z|w") == "x_y_z_w" and len(safe_stem("é" * 300).encode()) <= 200
