"""``genrekit sort`` and ``genrekit.library.sorting``: never overwrite, never lose a file, undo.

Genres come from a small Parquet batch result (``--from``), so each file's folder is known."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("pyarrow")

from genrekit.cli.main import main  # noqa: E402
from genrekit.library import sorting  # noqa: E402
from genrekit.library.sorting import SortError, check_pattern, render  # noqa: E402

from .library_files import full_disk_on, row, sha256, songs, write_result  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GENREKIT_STATE_DIR", str(tmp_path / "state"))
    from genrekit.prediction import Classifier

    def no_model(cls, *a, **kw):
        raise AssertionError("these tests answer from a batch result; no model should load")

    monkeypatch.setattr(Classifier, "load", classmethod(no_model))


@pytest.fixture
def music(tmp_path: Path) -> tuple[list[Path], Path]:
    """Three songs in two folders, two of them named s0.wav; a result saying jazz, jazz, hiphop."""
    a, b = songs(tmp_path / "in" / "one", 2)
    (c,) = songs(tmp_path / "in" / "two", 1)
    c = c.rename(c.with_name("s0.wav"))  # a second "s0.wav", different content
    res = write_result(tmp_path / "res", [row(a, "jazz", 0.9), row(b, "jazz", 0.8), row(c, "hiphop", 0.7)])
    return [a, b, c], res


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): (f"-> {os.readlink(p)}" if p.is_symlink() else sha256(p))
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


def journal(tmp_path: Path) -> Path:
    (j,) = (tmp_path / "state" / "undo").glob("sort-*.jsonl")
    return j


def test_copy_never_overwrites_and_keeps_sources(music, tmp_path: Path, capsys) -> None:
    files, res = music
    out_dir = tmp_path / "out"
    (out_dir / "Jazz").mkdir(parents=True)
    (out_dir / "Jazz" / "s0.wav").write_bytes(b"someone else's file")
    before = tree(tmp_path / "in")
    assert main(["sort", str(tmp_path / "in"), "--into", str(out_dir), "--from", str(res)]) == 0
    assert tree(tmp_path / "in") == before  # copies leave the sources alone
    got = tree(out_dir)
    assert got["Jazz/s0.wav"] == sha256_bytes(b"someone else's file")  # never overwritten
    assert got["Jazz/s0-2.wav"] == before["one/s0.wav"]
    assert got["Jazz/s1.wav"] == before["one/s1.wav"]
    assert got["Hip-Hop/s0.wav"] == before["two/s0.wav"]
    assert os.stat(out_dir / "Jazz" / "s1.wav").st_mtime_ns == os.stat(files[1]).st_mtime_ns
    assert not [p for p in out_dir.rglob("*") if p.name.endswith(sorting.TMP_SUFFIX)]
    assert "journal:" in capsys.readouterr().err

    assert main(["sort", "--undo", str(journal(tmp_path))]) == 0
    assert tree(out_dir) == {"Jazz/s0.wav": sha256_bytes(b"someone else's file")}  # only the copies went
    assert not (out_dir / "Hip-Hop").exists()  # folders the run made are gone again
    assert tree(tmp_path / "in") == before


def sha256_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("cross_fs", [False, True])
def test_move_and_undo(music, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cross_fs: bool) -> None:
    files, res = music
    if cross_fs:  # a different filesystem: copy + fsync + claim + delete, never a rename
        monkeypatch.setattr(sorting, "same_filesystem", lambda a, b: False)
        monkeypatch.setattr(os, "rename", lambda *a: pytest.fail("rename across filesystems"))
    before = tree(tmp_path / "in")
    out_dir = tmp_path / "out"
    assert main(["sort", *map(str, files), "--into", str(out_dir), "--from", str(res), "--move",
                 "--pattern", "{genre}/{label}-{name}"]) == 0
    assert not any(p.exists() for p in files)
    got = tree(out_dir)
    assert got == {"Jazz/jazz-s0.wav": before["one/s0.wav"], "Jazz/jazz-s1.wav": before["one/s1.wav"],
                   "Hip-Hop/hiphop-s0.wav": before["two/s0.wav"]}
    entries = [json.loads(x) for x in journal(tmp_path).read_text().splitlines()[1:]]
    assert [e["op"] for e in entries] == ["move"] * 3
    assert main(["sort", "--undo", str(journal(tmp_path))]) == 0
    assert tree(tmp_path / "in") == before
    assert not out_dir.exists() or tree(out_dir) == {}


def test_link_and_dry_run(music, tmp_path: Path, capsys) -> None:
    files, res = music
    out_dir = tmp_path / "out"
    before = tree(tmp_path)
    assert main(["sort", str(tmp_path / "in"), "--into", str(out_dir), "--from", str(res), "--link", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("would link") == 3 and "Jazz/s0-2.wav" not in out  # first free name now: s0.wav
    assert tree(tmp_path) == before and not (tmp_path / "state").exists()
    assert main(["sort", str(tmp_path / "in"), "--into", str(out_dir), "--from", str(res), "--link"]) == 0
    link = out_dir / "Hip-Hop" / "s0.wav"
    assert link.is_symlink() and os.readlink(link) == str(files[2].resolve())
    assert main(["sort", "--undo", str(journal(tmp_path))]) == 0
    assert not out_dir.exists() or not any(out_dir.rglob("*.wav"))
    assert all(p.exists() for p in files)


def test_min_confidence_and_files_inside_into(music, tmp_path: Path, capsys) -> None:
    files, res = music
    out_dir = tmp_path / "in" / "sorted"
    assert main(["sort", str(tmp_path / "in"), "--into", str(out_dir), "--from", str(res), "--min-confidence", "0.75"]) == 0
    out = capsys.readouterr().out
    assert "unsure: hiphop 0.70" in out
    assert sorted(tree(out_dir)) == ["Jazz/s0.wav", "Jazz/s1.wav"]
    # a second run sees the sorted copies inside --into and leaves them alone
    assert main(["sort", str(tmp_path / "in"), "--into", str(out_dir), "--from", str(res), "--min-confidence", "0.75"]) == 0
    assert capsys.readouterr().out.count("already inside --into") == 2


def test_undo_leaves_changed_copies_alone(music, tmp_path: Path, capsys) -> None:
    files, res = music
    out_dir = tmp_path / "out"
    assert main(["sort", str(files[1]), "--into", str(out_dir), "--from", str(res)]) == 0
    copy = out_dir / "Jazz" / "s1.wav"
    copy.write_bytes(b"edited by the user")
    assert main(["sort", "--undo", str(journal(tmp_path))]) == 1
    assert "changed since it was sorted" in capsys.readouterr().err
    assert copy.read_bytes() == b"edited by the user"


def test_patterns_are_checked_and_values_cannot_climb(tmp_path: Path) -> None:
    for bad in ("../{genre}/{name}", "/abs/{name}", "{artist}/{name}", "{genre}//{name}", "{genre"):
        with pytest.raises(SortError):
            check_pattern(bad)
    check_pattern("{genre}/{confidence}-{stem}.{ext}")
    assert render("{genre}/{name}", "x/song.mp3", "../Hip/Hop", "hiphop", 0.5) == Path("_Hip_Hop/song.mp3")
    assert render("{genre}/{stem}.{ext}", "a/.hidden.mp3", "..", "x", 0.5) == Path("_/hidden.mp3")


def test_bad_pattern_and_missing_into_are_one_line(music, tmp_path: Path, capsys) -> None:
    files, res = music
    assert main(["sort", str(files[0]), "--into", str(tmp_path / "o"), "--pattern", "{nope}"]) == 1
    assert capsys.readouterr().err.strip() == ("genrekit: error: --pattern '{nope}': unknown field {nope} "
                                               "(fields: genre, label, name, stem, ext, confidence, nearest)")
    assert main(["sort", str(files[0])]) == 1
    assert "--into DIR" in capsys.readouterr().err


# ------------------------------------------------------------- second review (issue 21): sort


def _entries(j: Path) -> list[dict]:
    return [json.loads(x) for x in j.read_text().splitlines()[1:]]


def test_undo_never_removes_the_last_copy(music, tmp_path: Path, capsys) -> None:
    """Review: sort (copy), the user deletes the originals, sort --undo removed the copies: no file
    left anywhere. Now a copy is removed only while its source has the same content; a copy whose
    source is gone goes back there; one whose source differs now is kept, with a line saying why."""
    files, res = music
    out_dir = tmp_path / "out"
    contents = {p: p.read_bytes() for p in files}
    assert main(["sort", str(tmp_path / "in"), "--into", str(out_dir), "--from", str(res)]) == 0
    files[0].unlink()  # the user deletes one original...
    files[1].write_bytes(b"edited original")  # ...edits another, and leaves the third alone
    capsys.readouterr()
    assert main(["sort", "--undo", str(journal(tmp_path))]) == 1
    out = capsys.readouterr()
    assert files[0].read_bytes() == contents[files[0]]  # moved back where it came from
    assert f"moved back {out_dir / 'Jazz' / 's0.wav'} -> {files[0]} (the source was gone: this was the last copy)" \
        in out.out
    assert files[1].read_bytes() == b"edited original"
    assert (out_dir / "Jazz" / "s1.wav").read_bytes() == contents[files[1]]  # kept
    assert out.err.splitlines()[0] == (f"genrekit: error: kept {out_dir / 'Jazz' / 's1.wav'}: {files[1]} exists but "
                                       "differs from it, so this may be the only copy of what was sorted; left where "
                                       "it is")
    assert not (out_dir / "Hip-Hop").exists() and files[2].read_bytes() == contents[files[2]]  # a true duplicate went


@pytest.mark.parametrize("action", ["--copy", "--move"])
@pytest.mark.parametrize("fail_at", [1, 3])
def test_full_disk_on_the_journal_stops_cleanly(music, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys,
                                                action: str, fail_at: int) -> None:
    """Review: a line per file, a traceback, an empty journal, and for --move files hard-linked
    into the target with no journal line. Now each line is written before its name is taken."""
    files, res = music
    before = tree(tmp_path / "in")
    j = tmp_path / "j.jsonl"
    free_disk = full_disk_on(monkeypatch, j, fail_at)
    out_dir = tmp_path / "out"
    assert main(["sort", *map(str, files), "--into", str(out_dir), "--from", str(res), action, "--journal", str(j)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"genrekit: error: {j}: cannot write the journal (disk full); stopped before changing anything more"]
    placed = sorted(str(p) for p in out_dir.rglob("*") if p.is_file()) if out_dir.exists() else []
    logged = sorted(e["dest"] for e in _entries(j)) if j.exists() else []
    assert placed == logged and len(placed) == max(fail_at - 2, 0)  # nothing in the target without its line
    assert not [p for p in out_dir.rglob("*") if p.name.endswith(sorting.TMP_SUFFIX)] if out_dir.exists() else True
    if fail_at == 1:
        assert not j.exists() and tree(tmp_path / "in") == before and not out_dir.exists()
        return
    free_disk()
    assert main(["sort", "--undo", str(j)]) == 0
    assert tree(tmp_path / "in") == before and (not out_dir.exists() or tree(out_dir) == {})


@pytest.mark.parametrize("pattern", ["{genre:{genre}}/{name}", "{confidence:d}/{name}", "{name:>{genre}}"])
def test_bad_format_specs_are_one_line(music, tmp_path: Path, capsys, pattern: str) -> None:
    files, res = music
    assert main(["sort", str(files[0]), "--into", str(tmp_path / "o"), "--from", str(res), "--pattern", pattern]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"genrekit: error: --pattern {pattern!r}: "), err
    assert not (tmp_path / "o").exists()


def test_format_specs_that_fit_work_and_cannot_add_levels() -> None:
    check_pattern("{confidence:.1f}/{genre:_<8}/{name}")
    assert render("{confidence:.1f}/{name}", "a/s.mp3", "Jazz", "jazz", 0.875) == Path("0.9/s.mp3")
    assert render("{confidence}/{name}", "a/s.mp3", "Jazz", "jazz", 0.875) == Path("0.88/s.mp3")  # as before
    # a fill character is never a separator, nor a way to make ".." (each level is checked as written)
    assert render("{genre:\\>8}/{name}", "s.mp3", "Jazz", "jazz", 0.5) == Path("____Jazz/s.mp3")
    assert render("{ext:.>2}/{name}", "s", "Jazz", "jazz", 0.5) == Path("_/s")


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_move_of_a_symlink_moves_the_link_and_undo_puts_it_back(music, tmp_path: Path, kind: str, capsys) -> None:
    """Review: a relative link was left dangling with no journal entry; an absolute one moved but its
    undo always failed. Now the link moves as a link to the same file, and undo restores its text."""
    files, res = music
    target = files[0]
    link = tmp_path / "in" / "links" / "l.wav"
    link.parent.mkdir()
    text = os.path.relpath(target, link.parent) if kind == "relative" else str(target)
    link.symlink_to(text)
    res2 = write_result(tmp_path / "res2", [row(link, "jazz", 0.9)])
    out_dir = tmp_path / "out"
    assert main(["sort", str(link), "--into", str(out_dir), "--from", str(res2), "--move"]) == 0, capsys.readouterr().err
    moved = out_dir / "Jazz" / "l.wav"
    assert moved.is_symlink() and moved.read_bytes() == target.read_bytes()  # not dangling
    assert not os.path.lexists(link) and target.exists()
    assert [e["op"] for e in _entries(journal(tmp_path))] == ["movelink"]
    assert main(["sort", "--undo", str(journal(tmp_path))]) == 0, capsys.readouterr().err
    assert link.is_symlink() and os.readlink(link) == text and not os.path.lexists(moved)


@pytest.mark.parametrize("cross_fs", [False, True])
def test_move_whose_source_cannot_be_removed_leaves_nothing_in_the_target(
        music, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, cross_fs: bool) -> None:
    """Review: from a read-only folder, "left where it was" but a second name stayed in the target
    (root ignores the folder's mode, so the refusal is simulated at the unlink)."""
    files, res = music
    if cross_fs:
        monkeypatch.setattr(sorting, "same_filesystem", lambda a, b: False)
    real_unlink = os.unlink
    src = str(files[1])

    def read_only(path, *a, **kw):
        if str(path) == src:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_unlink(path, *a, **kw)

    monkeypatch.setattr(os, "unlink", read_only)
    out_dir = tmp_path / "out"
    assert main(["sort", str(files[1]), "--into", str(out_dir), "--from", str(res), "--move"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (f"genrekit: error: {src}: cannot remove it from its folder "
                                                       "(Permission denied); left where it was, nothing placed")
    assert files[1].exists() and (not out_dir.exists() or not any(out_dir.rglob("*.wav")))
    monkeypatch.setattr(os, "unlink", real_unlink)
    assert main(["sort", "--undo", str(journal(tmp_path))]) == 0  # the journal's line is void: nothing to do
    assert files[1].exists()


@pytest.mark.parametrize("cross_fs", [False, True])
def test_killed_between_claim_and_delete_undo_removes_the_duplicate(music, tmp_path: Path, cross_fs: bool,
                                                                    capsys) -> None:
    """Review: SIGKILL after the new name is taken and before the source is deleted left a
    duplicate that undo refused ("a file has that name again")."""
    files, res = music
    out_dir = tmp_path / "out"
    j = tmp_path / "j.jsonl"
    script = textwrap.dedent(f"""
        import os, signal, sys
        from genrekit.library import sorting
        if {cross_fs!r}:
            sorting.same_filesystem = lambda a, b: False
        real_unlink = os.unlink
        def unlink(path, *a, **kw):
            if str(path) == {str(files[1])!r}:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_unlink(path, *a, **kw)
        os.unlink = unlink
        from genrekit.cli.main import main
        sys.exit(main(sys.argv[1:]))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", script, "sort", str(files[1]), "--into", str(out_dir), "--from",
                           str(res), "--move", "--journal", str(j)], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-800:]
    dup = out_dir / "Jazz" / "s1.wav"
    assert files[1].exists() and dup.exists()  # the duplicate the kill leaves
    assert main(["sort", "--undo", str(j)]) == 0, capsys.readouterr().err
    assert files[1].exists() and not dup.exists()
