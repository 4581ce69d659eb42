"""genrekit batch: sources, rows, the dataset folder (resume, redo, atomic parts) and the local engine.

A tiny FNN model file and 2 s tones keep every run to a few seconds; the default model is not needed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genrekit.batch.engines import LocalEngine
from genrekit.batch.rows import COLUMNS, Worker, WorkerSpec, error_row, model_hash, schema
from genrekit.batch.sources import Task, expand_sources, stat_task
from genrekit.batch.writer import DatasetDir, PartWriter
from genrekit.cli.main import main
from genrekit.errors import GenrekitError

from .batch_toy import REPO, CrashSpec, make_model_file, make_wavs


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return make_model_file(tmp_path_factory.mktemp("model") / "toy.safetensors")


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> list[Path]:
    return make_wavs(tmp_path_factory.mktemp("tones") / "lib", 8)


def spec_for(model: Path, **kw) -> WorkerSpec:
    return WorkerSpec(model=str(model), model_name=str(model), model_hash=model_hash(str(model)), **kw)


def read_rows(out: Path) -> list[dict]:
    return pq.read_table(out).to_pylist()  # the folder as one table, as pandas/polars/DuckDB see it


# ------------------------------------------------------------------------------------ sources


def test_sources_expand_files_folders_lists_and_tables(tmp_path, tones):
    lib = tones[0].parent
    (tmp_path / "empty").mkdir()
    lst = tmp_path / "lists" / "songs.txt"
    lst.parent.mkdir()
    rel = os.path.relpath(tones[1], lst.parent)
    lst.write_text(f"# my songs\n\n{rel}\nhttps://example.org/a.mp3\n{tones[0]}\n", encoding="utf-8")
    csv = tmp_path / "t.csv"
    csv.write_text(f"title,path\nx,{tones[2]}\ny,{tmp_path / 'missing.wav'}\n", encoding="utf-8")
    pq.write_table(pa.table({"input": [str(tones[3])]}), tmp_path / "t.parquet")

    tasks = expand_sources([str(lib), f"@{lst}", str(csv), str(tmp_path / "t.parquet"), str(tmp_path / "empty")])
    inputs = [t.input for t in tasks]
    assert inputs[:8] == [str(p) for p in tones]  # the folder, sorted; later duplicates dropped
    assert "https://example.org/a.mp3" in inputs and str(tmp_path / "missing.wav") in inputs
    assert len(inputs) == len(set(inputs)) == 11
    by = {t.input: t for t in tasks}
    assert by[str(tones[0])].size == tones[0].stat().st_size and by[str(tones[0])].mtime == tones[0].stat().st_mtime
    assert by["https://example.org/a.mp3"].size is None and by[str(tmp_path / "missing.wav")].size is None
    assert by[str(tmp_path / "empty")].error == "folder holds no audio files"

    (tmp_path / "bad.csv").write_text("title,artist\nx,y\n", encoding="utf-8")
    with pytest.raises(GenrekitError, match="no path column"):
        expand_sources([str(tmp_path / "bad.csv")])
    with pytest.raises(GenrekitError, match="cannot read this list"):
        expand_sources([f"@{tmp_path / 'nolist.txt'}"])


# --------------------------------------------------------------------------------- rows, writer


def test_worker_rows_errors_segments_and_blocks(tmp_path, toy, tones):
    import soundfile as sf

    from .batch_toy import LABELS

    work = Worker(spec_for(toy, segments=True, block_seconds=2.0))
    long = tmp_path / "long.wav"
    sf.write(long, sf.read(tones[0])[0].tolist() * 4, 11025)  # 8 s: four 2 s blocks
    row = work(stat_task(str(long)))
    assert row["error"] == "" and row["duration_s"] == pytest.approx(8.0, abs=0.01)
    assert [x["label"] for x in row["labels"]][0] == row["genre"] and sorted(x["label"] for x in row["labels"]) == sorted(LABELS)
    assert [x["score"] for x in row["labels"]] == sorted((x["score"] for x in row["labels"]), reverse=True)
    assert len(row["segments"]) >= 7 and row["segments"][0]["labels"][0]["label"] == row["segments"][0]["genre"]
    assert row["nearest"] is None or isinstance(row["nearest"], str)  # filled once the model gives it
    (tmp_path / "junk.wav").write_bytes(b"not audio at all" * 10)
    bad = work(stat_task(str(tmp_path / "junk.wav")))
    assert bad["error"] and bad["genre"] is None and "\n" not in bad["error"]
    assert not bad["error"].startswith(str(tmp_path))  # the row names the input; the error is the reason
    assert work(Task(str(tmp_path / "none.wav")))["error"]
    pa.Table.from_pylist([row, bad], schema=schema())  # both fit the one schema
    assert Worker(spec_for(toy))(stat_task(str(tones[0])))["segments"] is None  # only with --segments


def _row(inp: str, mh: str = "m1", error: str = "", size: int = 1, mtime: float = 1.0) -> dict:
    r = error_row(Task(inp, size, mtime), "toy", mh, error or "x")
    if not error:
        r.update(error="", genre="rock", confidence=0.5)
    return r


def test_parts_resume_plan_redo_failed_and_changed_files(tmp_path):
    ds = DatasetDir(tmp_path / "out")
    ds.lock()
    w = PartWriter(ds.root, "r1", rows_per_part=2)
    for r in [_row("a"), _row("b", error="cannot decode"), _row("c"), _row("d", mh="m2")]:
        w.add(r)
    w.add(_row("e"))
    assert len(ds.parts()) == 2 and w.buf  # two full parts committed, "e" still buffered
    w.flush()
    assert [p.name for p in ds.parts()] == [f"part-r1-0000{i}.parquet" for i in (1, 2, 3)]
    assert not list(ds.root.glob(".*.tmp"))

    tasks = [Task(i, 1, 1.0) for i in "abcdef"] + [Task("e", 2, 1.0)]
    plan = ds.plan(tasks[:6], "m1")
    assert [t.input for t in plan.todo] == ["d", "f"] and plan.skipped == 4 and plan.skipped_failed == 1 and not plan.drop
    plan = ds.plan(tasks[:6], "m1", redo_failed=True)
    assert [t.input for t in plan.todo] == ["b", "d", "f"] and plan.n_drop == 1
    ds.drop_rows(plan.drop)
    assert sorted(r["input"] for r in read_rows(ds.root)) == ["a", "c", "d", "e"]  # b's failed row gone first
    plan = ds.plan([Task("e", 2, 1.0)], "m1")  # the file changed: redone, its old row dropped
    assert [t.input for t in plan.todo] == ["e"] and plan.n_drop == 1

    with pytest.raises(GenrekitError, match="another genrekit batch"):
        DatasetDir(ds.root).lock()
    ds.unlock()
    (ds.root / ".part-r2-00001.parquet.abc.tmp").write_bytes(b"half")  # a killed run's temp file
    ds.lock()
    assert not list(ds.root.glob(".part-*")) and len(read_rows(ds.root)) == 4
    ds.unlock()


# ------------------------------------------------------------------------------ local engine CLI


def test_cli_local_engine_resume_redo_and_report(tmp_path, toy, tones, capsys):
    (tmp_path / "junk.wav").write_bytes(b"RIFF....WAVEjunk" * 8)
    out = tmp_path / "out"
    argv = ["batch", str(tones[0].parent), str(tmp_path / "junk.wav"), "--model", str(toy), "--out", str(out),
            "--workers", "2"]
    assert main(argv) == 1  # an input failed
    err = capsys.readouterr().err
    assert "8 classified, 0 skipped, 1 failed" in err
    rows = read_rows(out)
    assert [f.name for f in pq.read_schema(out / next(p.name for p in out.glob("part-*"))) ] == COLUMNS
    assert sorted(r["input"] for r in rows) == sorted([str(p) for p in tones] + [str(tmp_path / "junk.wav")])
    ok = [r for r in rows if not r["error"]]
    assert len(ok) == 8 and all(r["model_hash"] == model_hash(str(toy)) and r["seconds"] >= 0 for r in ok)
    single = Worker(spec_for(toy))(stat_task(str(tones[3])))
    assert next(r for r in ok if r["input"] == str(tones[3]))["labels"] == single["labels"]  # same work function
    run = json.loads((out / "_genrekit_run.json").read_text())["runs"][-1]
    assert run["status"] == "finished" and run["counts"]["done"] == 9 and run["counts"]["failed"] == 1
    assert run["engine_stats"]["startup_s"] > 0

    parts = sorted(p.name for p in out.glob("part-*"))
    assert main(argv) == 0  # resumed: nothing to do, nothing written
    assert "0 classified, 9 skipped, 0 failed" in capsys.readouterr().err
    assert sorted(p.name for p in out.glob("part-*")) == parts

    assert main(argv + ["--redo-failed"]) == 1  # the junk file again, and still one row for it
    assert "0 classified, 8 skipped, 1 failed" in capsys.readouterr().err
    rows = read_rows(out)
    assert len(rows) == 9 and len({r["input"] for r in rows}) == 9
    assert len(json.loads((out / "_genrekit_run.json").read_text())["runs"]) == 3

    png = tmp_path / "g.png"
    assert main(["batch", "--report", str(out), "--png", str(png)]) == 0
    text = capsys.readouterr().out
    assert "9 tracks, 8 classified, 1 failed" in text and png.stat().st_size > 1000
    # the failures' reasons, not just their count, with the input that had each
    junk_error = next(r["error"] for r in rows if r["error"])
    lines = text.splitlines()
    i = lines.index("  failed:")
    assert lines[i + 1].split(None, 1) == ["1", junk_error] and str(tmp_path / "junk.wav") in lines[i + 2]


def test_cli_errors_are_one_line(tmp_path, toy, tones, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main(["batch", str(tones[0]), "--out", str(tmp_path / "o"), "--engine", "ray"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "genrekit: error: --engine ray needs Ray: pip install 'genrekit[ray]'"
    assert main(["batch", str(tones[0])]) == 1 and "--out DIR is required" in capsys.readouterr().err
    assert main(["batch", "--report", str(tmp_path / "nothing")]) == 1
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    assert main(["batch", "--report", str(tmp_path / "photos")]) == 1  # a folder that holds no result
    err = capsys.readouterr().err.strip()
    assert err.startswith("genrekit: error: ") and "not a genrekit batch result" in err and "\n" not in err
    assert main(["batch", str(tones[0]), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "no.safetensors")]) == 1
    assert "cannot read the model file" in capsys.readouterr().err


def test_batch_row_error_holds_decoder_chatter(tmp_path):
    """A batch worker's row for a file the decoder complained about carries the complaint."""
    import subprocess
    import sys
    from pathlib import Path

    from .test_prediction import _chatty_mp3

    bad = _chatty_mp3(tmp_path)
    repo = Path(__file__).resolve().parents[1]
    script = ("import sys, json; from pathlib import Path; from tests.batch_toy import make_model_file; "
              "from genrekit.batch.rows import Worker, WorkerSpec, model_hash; "
              "from genrekit.batch.sources import stat_task; "
              "m = str(make_model_file(Path(sys.argv[2]) / 'toy.safetensors')); "
              "w = Worker(WorkerSpec(model=m, model_name=m, model_hash=model_hash(m))); "
              "print(json.dumps(w(stat_task(sys.argv[1]))['error']))")
    r = subprocess.run([sys.executable, "-c", script, str(bad), str(tmp_path)], cwd=repo, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert "Illegal Audio-MPEG-Header" not in r.stderr
    error = json.loads(r.stdout.strip().splitlines()[-1])
    assert "(decoder: " in error and "Illegal Audio-MPEG-Header" in error


# --------------------------------------------------------------------------------- failures


def test_local_worker_killed_input_retried_once_then_failed(tmp_path, toy, tones):
    poison = tmp_path / "poison.wav"
    poison.write_bytes(tones[0].read_bytes())
    tasks = [stat_task(str(p)) for p in tones[:4]] + [stat_task(str(poison))] + [stat_task(str(p)) for p in tones[4:]]

    base = spec_for(toy)
    always = CrashSpec(**{**base.__dict__, "crash_on": "poison"})
    engine = LocalEngine(workers=2)
    rows = [r for r in engine.rows(always, tasks) if r is not None]
    assert sorted(r["input"] for r in rows) == sorted(t.input for t in tasks)  # each input exactly once
    dead = next(r for r in rows if r["input"] == str(poison))
    assert "worker process died while reading this input (signal 9), twice" in dead["error"]
    assert all(not r["error"] for r in rows if r is not dead) and engine.stats["respawns"] == 2

    (tmp_path / "m").mkdir()
    once = CrashSpec(**{**base.__dict__, "crash_on": "poison", "marker_dir": str(tmp_path / "m")})
    rows = [r for r in LocalEngine(workers=2).rows(once, tasks) if r is not None]
    assert sorted(r["input"] for r in rows) == sorted(t.input for t in tasks)
    assert all(not r["error"] for r in rows) and (tmp_path / "m" / "crashed").exists()


DRIVER = """
import sys
import genrekit.batch.rows as rows
from tests.batch_toy import SlowSpec
rows.WorkerSpec = SlowSpec  # the CLI builds its spec from genrekit.batch.rows: its workers now sleep per input
from genrekit.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_driver_sigkill_mid_run_then_resume_loses_and_doubles_nothing(tmp_path, toy):
    wavs = make_wavs(tmp_path / "lib", 30, seconds=1.5)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    args = [str(tmp_path / "lib"), "--model", str(toy), "--out", str(out), "--workers", "2", "--part-rows", "4", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, "batch", *args], env=env, cwd=tmp_path,
                            start_new_session=True, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(list(out.glob("part-*.parquet"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)  # the driver only: its workers must notice and go
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stderr.close()
    before = read_rows(out)
    assert 8 <= len(before) < 30 and len({r["input"] for r in before}) == len(before)
    run = json.loads((out / "_genrekit_run.json").read_text())["runs"][-1]
    assert run["status"] == "running" and run["ended"] is None  # what a killed run leaves

    r = subprocess.run([sys.executable, "-m", "genrekit.cli.main", "batch", *args], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    after = read_rows(out)
    assert sorted(x["input"] for x in after) == sorted(str(w) for w in wavs)  # none lost, none twice
    kept = {x["input"]: x["seconds"] for x in before}
    assert all(x["seconds"] == kept[x["input"]] for x in after if x["input"] in kept)  # not redone
    assert json.loads((out / "_genrekit_run.json").read_text())["runs"][-1]["counts"]["skipped"] == len(before)


# ------------------------------------------------------- issue 21: links, full disks, damaged parts


class _InlineEngine:
    """The work function run in this process: the driver's code paths without worker start-up."""

    name = "inline"

    def __init__(self) -> None:
        self.stats: dict = {}

    def rows(self, spec, tasks):
        work = spec.build()
        for t in tasks:
            yield work(t)


@pytest.fixture
def inline(monkeypatch):
    import genrekit.batch.engines as engines

    monkeypatch.setattr(engines, "make_engine", lambda *a, **k: _InlineEngine())


def _argv(sources, out: Path, toy: Path, *extra: str) -> list[str]:
    return ["batch", *map(str, sources), "--model", str(toy), "--out", str(out), "--quiet", *extra]


def test_dangling_link_in_a_folder_is_one_failed_row(tmp_path, toy, inline, capsys):
    lib = tmp_path / "lib"
    wavs = make_wavs(lib, 3)
    (lib / "ghost.wav").symlink_to(lib / "deleted.wav")
    tasks = expand_sources([str(lib)])
    assert [t.input for t in tasks if not t.error] == [str(w) for w in wavs]
    ghost = next(t for t in tasks if t.error)
    assert ghost.input == str(lib / "ghost.wav") and "broken symbolic link" in ghost.error

    out = tmp_path / "out"
    assert main(_argv([lib], out, toy)) == 1  # one input failed; the batch went on
    assert "Traceback" not in capsys.readouterr().err
    rows = {r["input"]: r for r in read_rows(out)}
    assert len(rows) == 4 and all(not rows[str(w)]["error"] for w in wavs)
    assert "broken symbolic link" in rows[str(lib / "ghost.wav")]["error"]


def _full_disk_after(monkeypatch, n_ok: int) -> None:
    """pyarrow's Parquet writer succeeds ``n_ok`` times, then writes a few bytes and fails with
    ENOSPC, as a disk that fills up mid-part does."""
    import errno

    import pyarrow.parquet as pq_mod

    real = pq_mod.write_table
    calls = {"n": 0}

    def write_table(table, where, **kw):
        calls["n"] += 1
        if calls["n"] <= n_ok:
            return real(table, where, **kw)
        Path(where).write_bytes(b"PAR1" + b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq_mod, "write_table", write_table)


def test_full_disk_stops_with_one_line_and_resume_goes_on(tmp_path, toy, tones, inline, monkeypatch, capsys):
    out = tmp_path / "out"
    argv = _argv([tones[0].parent], out, toy, "--part-rows", "3")
    with monkeypatch.context() as m:
        _full_disk_after(m, 1)
        assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith(f"genrekit: error: {out}: cannot write the batch dataset (no space left on the disk)")
    assert [p.name for p in out.iterdir() if p.name.startswith(".part-")] == []  # no half-written temp file
    assert len(read_rows(out)) == 3  # the part committed before the disk filled, whole

    assert main(argv) == 0  # space again: the same command goes on
    rows = read_rows(out)
    assert sorted(r["input"] for r in rows) == sorted(str(t) for t in tones)


@pytest.mark.parametrize("code, words", [("EROFS", "the folder is read-only"), ("EACCES", "permission denied")])
def test_read_only_output_folder_is_one_line(tmp_path, toy, tones, inline, monkeypatch, capsys, code, words):
    import errno

    import genrekit.models.modelfile as modelfile

    out = tmp_path / "out"
    assert main(_argv(tones[:2], out, toy)) == 0  # an existing dataset, lock file and all
    capsys.readouterr()
    before = sorted((p.name, p.stat().st_size) for p in out.iterdir())

    def refuse(dest, suffix):
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)))

    monkeypatch.setattr(modelfile, "_create_beside", refuse)  # every atomic write in the folder
    assert main(_argv(tones, out, toy)) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err and f"cannot write the batch dataset ({words})" in err
    assert sorted((p.name, p.stat().st_size) for p in out.iterdir()) == before  # nothing changed


def test_truncated_part_is_reported_and_its_inputs_redone(tmp_path, toy, tones, inline, capsys):
    out = tmp_path / "out"
    argv = _argv([tones[0].parent], out, toy, "--part-rows", "3")
    assert main(argv) == 0
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) == 3
    lost = {r["input"] for r in pq.read_table(parts[1]).to_pylist()}
    data = parts[1].read_bytes()
    parts[1].write_bytes(data[: len(data) // 2])  # a copy cut short, a full disk of an older version
    capsys.readouterr()

    assert main(["batch", "--report", str(out), "--png", str(tmp_path / "g.png")]) == 1
    cap = capsys.readouterr()
    assert f"{8 - len(lost)} tracks" in cap.out and "Traceback" not in cap.err
    assert f"{parts[1]}: damaged part, not a readable Parquet file" in cap.err and cap.err.count("\n") == 1

    assert main(argv) == 0  # resume: the damaged part set aside, its inputs classified again
    err = capsys.readouterr().err
    assert f"moved aside to _damaged-{parts[1].name}" in err
    assert (out / f"_damaged-{parts[1].name}").read_bytes() == data[: len(data) // 2]  # kept as it was
    rows = read_rows(out)
    assert sorted(r["input"] for r in rows) == sorted(str(t) for t in tones) and len(rows) == 8
    assert main(["batch", "--report", str(out), "--png", str(tmp_path / "g.png")]) == 0
    assert "8 tracks" in capsys.readouterr().out


FSIZE_DRIVER = """
import resource, signal, sys
import genrekit.batch.engines as engines
from tests.test_batch import _InlineEngine
engines.make_engine = lambda *a, **k: _InlineEngine()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))
from genrekit.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE semantics checked on Linux")
def test_real_write_failure_from_the_os_is_one_line(tmp_path, toy, tones):
    """The same stop through the real OS path: a file-size limit makes the kernel refuse the Parquet
    writer's bytes (EFBIG), the way a full disk refuses them (ENOSPC)."""
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", FSIZE_DRIVER, *_argv([tones[0].parent], out, toy, "--part-rows", "3")],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert "cannot write the batch dataset (file too large for this file system or limit)" in r.stderr, r.stderr
    assert not list(out.glob("part-*")) and not list(out.glob(".part-*"))
