"""``genrekit sort`` and ``genrekit.library.sorting``: never overwrite, never lose a file, undo.

Genres come from a small Parquet batch result (``--from``), so each file's folder is known."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("pyarrow")

from genrekit.cli.main import main  # noqa: E402
from genrekit.library import sorting  # noqa: E402
from genrekit.library.sorting import SortError, check_pattern, render  # noqa: E402

from .library_files import row, sha256, songs, write_result  # noqa: E402


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
