"""The beets plugin (``src/beetsplug/genrekit.py``) in a real beets library in a temp folder:
import, ``beet genrekit -p``, ``beet genrekit``, ``beet write``, and ``auto: yes`` on import.
Prediction is the toy model (tests/beets_runner.py); beets runs in subprocesses, as users run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from genrekit.datasets import clip_by_stem

pytest.importorskip("beets")

from genrekit.library.names import DISPLAY  # noqa: E402
from genrekit.library.tagging import read_state  # noqa: E402

from .library_files import OLD_GENRES, make_library, sha256, streaming_wav  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RUNNER = REPO / "tests" / "beets_runner.py"


def beet(beetsdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BEETSDIR": str(beetsdir), "HOME": str(beetsdir),
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(RUNNER), *args], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def items(beetsdir: Path) -> dict[str, object]:
    from beets.library import Library

    lib = Library(str(beetsdir / "library.db"), str(beetsdir.parent / "library"))  # paths are stored relative to it
    try:
        return {os.fsdecode(i.path): i for i in lib.items()}
    finally:
        lib._close()


def beets_dir(tmp_path: Path, write: str, genrekit_config: str) -> Path:
    """A beets config folder in ``tmp_path``: library beside it, copy on import, ``import.write``
    as given, the genrekit plugin with ``genrekit_config`` (YAML lines under ``genrekit:``)."""
    beetsdir = tmp_path / "beets"
    beetsdir.mkdir()
    (beetsdir / "config.yaml").write_text(
        f"directory: {tmp_path / 'library'}\nlibrary: {beetsdir / 'library.db'}\nplugins: genrekit\n"
        f"import:\n  copy: yes\n  write: {write}\n  quiet: yes\n"
        f"genrekit:\n{genrekit_config}")
    return beetsdir


def genres_of(item) -> list[str]:
    return list(item.get("genres") or []) if "genres" in type(item)._fields else [item.get("genre")]


def test_import_pretend_run_write(gtzan_clips: Path, tmp_path: Path) -> None:
    music = make_library(clip_by_stem(gtzan_clips, "jazz/jazz.00003"), tmp_path / "music", ["mp3-v24", "flac", "m4a"])
    beetsdir = beets_dir(tmp_path, "no", "  mode: add\n")
    beet(beetsdir, "import", "-A", str(tmp_path / "music"))
    before = items(beetsdir)
    assert len(before) == len(music)
    hashes = {p: sha256(Path(p)) for p in before}

    out = beet(beetsdir, "genrekit", "-p").stdout
    assert out.count("[pretend]") == len(music)
    after = items(beetsdir)
    assert all(not i.get("genrekit_genre") for i in after.values())
    assert {p: sha256(Path(p)) for p in after} == hashes

    beet(beetsdir, "genrekit")  # import.write is off: the library changes, the files do not
    done = items(beetsdir)
    for p, item in done.items():
        label = item.get("genrekit_genre")
        assert label in DISPLAY and 0 < float(item.get("genrekit_confidence")) <= 1
        assert genres_of(item) == [*OLD_GENRES, DISPLAY[label]]  # --mode add kept the user's genres
        assert sha256(Path(p)) == hashes[p]
    again = beet(beetsdir, "genrekit").stdout
    assert again.count("genrekit did it before") == len(music)
    # the flexible attributes are typed: range queries work on the confidence
    listed = beet(beetsdir, "ls", "-f", "$genrekit_genre $genrekit_tags", "genrekit_confidence:0..1").stdout
    lines = listed.splitlines()
    assert len(lines) == len(music) and all("loud" in ln and "quiet" in ln for ln in lines)  # the toy's tags

    beet(beetsdir, "write")
    for p, item in items(beetsdir).items():
        assert list(read_state(p).genres) == genres_of(item)


def test_auto_on_import_and_write_setting(gtzan_clips: Path, tmp_path: Path) -> None:
    make_library(clip_by_stem(gtzan_clips, "blues/blues.00001"), tmp_path / "music", ["ogg"])
    beetsdir = beets_dir(tmp_path, "yes", "  auto: yes\n  names: plain\n")
    beet(beetsdir, "import", "-A", str(tmp_path / "music"))
    ((p, item),) = items(beetsdir).items()
    label = item.get("genrekit_genre")
    assert genres_of(item) == [label]  # replace mode, the model's own label
    assert list(read_state(p).genres) == [label]  # beets wrote it on import (import.write: yes)


def test_streaming_wav_is_never_written_by_beets(gtzan_clips: Path, tmp_path: Path) -> None:
    """Review (issue 21): with ``import.write`` on, beets' in-place write of a streaming WAV (sizes
    0xFFFFFFFF, as ``ffmpeg -f wav pipe:`` writes) failed part-way after inserting 8 bytes into the
    audio. The plugin now refuses every beets write genrekit would not do itself: the WAV stays
    byte for byte as it was (its genre is still stored in the library), an ordinary file is written."""
    music = tmp_path / "music"
    make_library(clip_by_stem(gtzan_clips, "blues/blues.00001"), music, ["ogg"])
    streaming_wav(music / "pipe.wav")
    original = (music / "pipe.wav").read_bytes()
    beetsdir = beets_dir(tmp_path, "yes", "  auto: yes\n  names: plain\n")
    beet(beetsdir, "import", "-A", str(music))
    got = items(beetsdir)
    assert len(got) == 2
    (wav,) = [p for p in got if p.endswith(".wav")]
    (ogg,) = [p for p in got if p.endswith(".ogg")]
    assert Path(wav).read_bytes() == original  # import with write on: untouched
    assert got[wav].get("genrekit_genre")  # the genre is in the library all the same
    assert list(read_state(ogg).genres) == [got[ogg].get("genrekit_genre")]  # other files are written
    proc = beet(beetsdir, "genrekit", "-f")  # the plugin's own write (import.write is on)
    assert "not written, a streaming WAV" in proc.stdout + proc.stderr
    beet(beetsdir, "modify", "-y", f"path:{wav}", "comments=New")  # beets' own writes go through the same check
    beet(beetsdir, "write", "-f")
    assert Path(wav).read_bytes() == original
    assert (music / "pipe.wav").read_bytes() == original  # the source beets copied from, too
