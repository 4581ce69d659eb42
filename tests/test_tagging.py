"""``genrekit tag`` and ``genrekit.library.tagging`` on real files of every format: nothing lost.

The files are made from a shared GTZAN clip (MP3 with ID3v2.3 and v2.4, FLAC, Ogg Vorbis, Opus,
M4A, WAV, AIFF) and carry title, artist, album, cover art, ReplayGain and two genres. Prediction
is the toy model (tests/predict_toy.py) unless a test is about the default model.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from genrekit.cli.main import main
from genrekit.datasets import clip_by_stem
from genrekit.library import tagging
from genrekit.library.names import DISPLAY
from genrekit.library.tagging import GenreState, new_genres, parse_marker, read_state, write_state
from genrekit.prediction import Classifier  # noqa: E402

from .library_files import (
    OLD_GENRES,
    V23_FRAMES,
    audio_bytes,
    av_tags,
    decoded,
    full_disk_on,
    make_library,
    mp3_frames,
    other_tags,
    sha256,
    streaming_wav,
    v23_mp3,
)
from .predict_toy import ToyModel, default_model_available

REPO = Path(__file__).resolve().parents[1]
REAL_LOAD = Classifier.__dict__["load"]
BYTE_EXACT = ("mp3-v23", "mp3-v24", "flac")


@pytest.fixture(scope="module")
def made(gtzan_clips: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("made")
    make_library(clip_by_stem(gtzan_clips, "rock/rock.00000"), folder)
    return folder


@pytest.fixture
def lib(made: Path, tmp_path: Path) -> dict[str, Path]:
    """A fresh copy of the tagged files for one test."""
    folder = tmp_path / "music"
    shutil.copytree(made, folder)
    return {p.stem.removeprefix("song-"): p for p in sorted(folder.iterdir())}


@pytest.fixture(autouse=True)
def _toy_and_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Prediction by the toy model; undo logs into the test's folder, never ~/.local/state."""
    from genrekit.prediction import Classifier

    monkeypatch.setattr(Classifier, "load", classmethod(lambda cls, model=None, **kw: cls(ToyModel(), name="toy")))
    monkeypatch.setenv("GENREKIT_STATE_DIR", str(tmp_path / "state"))


def snapshot(p: Path, kind: str) -> dict:
    st = os.stat(p)
    return {"other": other_tags(p), "audio": decoded(p), "frames": audio_bytes(p) if kind in BYTE_EXACT else None,
            "sha256": sha256(p), "mode": st.st_mode, "mtime": st.st_mtime_ns, "uid": st.st_uid, "gid": st.st_gid}


def assert_nothing_else_changed(before: dict, p: Path, kind: str) -> None:
    after = snapshot(p, kind)
    assert after["other"] == before["other"], kind
    assert np.array_equal(after["audio"], before["audio"]), f"{kind}: decoded audio changed"
    if kind in BYTE_EXACT:
        assert after["frames"] == before["frames"], f"{kind}: audio frames changed"
    for k in ("mode", "mtime", "uid", "gid"):
        assert after[k] == before[k], (kind, k)


def test_every_format_add_then_undo_loses_nothing(lib: dict[str, Path], tmp_path: Path, capsys) -> None:
    before = {k: snapshot(p, k) for k, p in lib.items()}
    log = tmp_path / "tag.jsonl"
    rc = main(["tag", str(next(iter(lib.values())).parent), "--mode", "add", "--undo-log", str(log)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert out.out.count("tagged") == len(lib)
    for kind, p in lib.items():
        state = read_state(p)
        label = parse_marker(state.marker)["genre"]
        assert state.genres == (*OLD_GENRES, DISPLAY[label]), kind  # added after the user's genres
        assert_nothing_else_changed(before[kind], p, kind)
        # a second reader (FFmpeg through PyAV) sees the genres as players do: all of them where the
        # format lists them (Vorbis comments, ID3v2.3's "/"), the first one for ID3v2.4 and MP4
        seen = [g for part in av_tags(p)["genre"].split(";") for g in part.split("/")]
        assert seen == list(state.genres[: len(seen)]) and seen, kind
    assert len(log.read_text().splitlines()) == 1 + len(lib)

    rc = main(["tag", "--undo", str(log)])
    assert rc == 0, capsys.readouterr().err
    for kind, p in lib.items():
        assert read_state(p) == GenreState(tuple(OLD_GENRES), None), kind  # old values back, marker gone
        assert_nothing_else_changed(before[kind], p, kind)
        assert sha256(p) == before[kind]["sha256"], f"{kind}: undo did not give the original bytes back"


def test_replace_mode_players_see_the_new_genre(lib: dict[str, Path], capsys) -> None:
    assert main(["tag", *map(str, lib.values()), "--names", "plain"]) == 0
    for kind, p in lib.items():
        state = read_state(p)
        label = parse_marker(state.marker)["genre"]
        assert state.genres == (label,), kind
        assert av_tags(p)["genre"] == label, kind  # mutagen and FFmpeg agree


def test_dry_run_changes_no_byte(lib: dict[str, Path], tmp_path: Path, capsys) -> None:
    hashes = {p: sha256(p) for p in lib.values()}
    rc = main(["tag", *map(str, lib.values()), "--dry-run", "--mode", "add"])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.count("would tag") == len(lib) and "Rock; Blues -> Rock; Blues; " in out
    assert {p: sha256(p) for p in lib.values()} == hashes
    assert not (tmp_path / "state").exists()  # no undo log either


def test_tagged_files_are_skipped_unless_forced_and_force_swaps_own_value(lib: dict[str, Path], capsys) -> None:
    p = lib["flac"]
    assert main(["tag", str(p), "--mode", "add"]) == 0
    first = read_state(p)
    capsys.readouterr()
    h = sha256(p)
    assert main(["tag", str(p), "--mode", "add"]) == 0
    assert "tagged by genrekit before" in capsys.readouterr().out and sha256(p) == h
    # forced, with the other name style: genrekit's earlier value is swapped, the user's kept
    assert main(["tag", str(p), "--mode", "add", "--force", "--names", "plain"]) == 0
    label = parse_marker(first.marker)["genre"]
    assert read_state(p).genres == (*OLD_GENRES, label)


def test_fill_mode_only_fills_empty_genres(lib: dict[str, Path], capsys) -> None:
    empty, full = lib["ogg"], lib["m4a"]
    write_state(empty, GenreState((), None))
    h = sha256(full)
    assert main(["tag", str(empty), str(full), "--mode", "fill"]) == 0
    out = capsys.readouterr().out
    assert "has a genre (Rock; Blues; --mode fill)" in out
    assert sha256(full) == h
    assert len(read_state(empty).genres) == 1


def test_read_only_file_is_one_error_line_and_the_rest_go_on(lib: dict[str, Path], capsys) -> None:
    ro = lib["mp3-v24"]
    ro.chmod(0o444)
    h = sha256(ro)
    rc = main(["tag", *map(str, lib.values())])
    out = capsys.readouterr()
    assert rc == 1
    errors = [line for line in out.err.splitlines() if line.startswith("genrekit: error:")]
    assert errors == [f"genrekit: error: {ro}: read-only file (permission denied); left as it is"]
    assert sha256(ro) == h
    assert out.out.count("tagged") == len(lib) - 1


def test_locked_file_is_left_alone(lib: dict[str, Path]) -> None:
    import fcntl

    p = lib["wav"]
    h = sha256(p)
    with open(p, "rb") as f:  # another program holds an exclusive lock (it is writing the file)
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        with pytest.raises(tagging.TagError, match="locked by another program"):
            write_state(p, GenreState(("Jazz",), None))
    assert sha256(p) == h
    assert [q.name for q in p.parent.iterdir() if q.name.endswith(tagging.TMP_SUFFIX)] == []


def test_other_formats_cannot_be_tagged_and_stay_untouched(lib: dict[str, Path], gtzan_clips: Path, tmp_path: Path,
                                                         capsys) -> None:
    from .library_files import clip_samples, encode

    au = tmp_path / "old.au"
    encode(*clip_samples(clip_by_stem(gtzan_clips, "rock/rock.00000")), au, "au", "pcm_s16be", 22050)
    h = sha256(au)
    rc = main(["tag", str(au), str(lib["flac"])])
    out = capsys.readouterr().out
    assert rc == 0
    line = [ln for ln in out.splitlines() if "old.au" in ln]
    assert len(line) == 1 and line[0].startswith("skipped") and "cannot tag" in line[0]
    assert sha256(au) == h


def test_the_original_is_never_opened_for_writing(lib: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """mutagen edits the temp copy only: every open of the original is read-only."""
    import builtins

    target = str(lib["mp3-v23"].resolve())
    seen = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, mode="r", *a, **kw):
        if isinstance(file, (str, Path)) and os.path.abspath(file) == target:
            seen.append(mode)
        return real_open(file, mode, *a, **kw)

    def spy_os_open(path, flags, *a, **kw):
        if isinstance(path, (str, Path)) and os.path.abspath(path) == target:
            seen.append(flags)
        return real_os_open(path, flags, *a, **kw)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    write_state(lib["mp3-v23"], GenreState(("Jazz",), "x"))
    monkeypatch.undo()
    assert seen, "the spy saw no open at all"
    for mode in seen:
        assert (mode & (os.O_WRONLY | os.O_RDWR) == 0) if isinstance(mode, int) else set(mode) <= {"r", "b"}, mode
    assert read_state(lib["mp3-v23"]).genres == ("Jazz",)


@pytest.mark.parametrize("when", ["before_rename", "after_rename"])
def test_killed_mid_write_leaves_old_or_new_file(lib: dict[str, Path], when: str) -> None:
    p = lib["flac"]
    old_hash, old_state = sha256(p), read_state(p)
    script = textwrap.dedent(f"""
        import os, signal, sys
        from genrekit.library import tagging
        real_replace = os.replace
        def kill(*a):
            os.kill(os.getpid(), signal.SIGKILL)
        def replace_then_kill(a, b):
            real_replace(a, b)
            kill()
        if {when!r} == "before_rename":
            tagging.before_replace = kill
        else:
            os.replace = replace_then_kill
        tagging.write_state(sys.argv[1], tagging.GenreState(("Jazz",), "m"))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", script, str(p)], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-500:]
    assert decoded(p).size > 0  # a whole, playable file either way
    if when == "before_rename":
        assert sha256(p) == old_hash and read_state(p) == old_state
    else:
        assert read_state(p) == GenreState(("Jazz",), "m")


def test_undo_leaves_files_changed_since_alone(lib: dict[str, Path], tmp_path: Path, capsys) -> None:
    log = tmp_path / "u.jsonl"
    assert main(["tag", str(lib["opus"]), str(lib["aiff"]), "--undo-log", str(log)]) == 0
    write_state(lib["opus"], GenreState(("Mine",), None))  # the user retags one file by hand
    capsys.readouterr()
    assert main(["tag", "--undo", str(log)]) == 1
    err = capsys.readouterr().err
    assert "its genre changed since this log" in err
    assert read_state(lib["opus"]).genres == ("Mine",)
    assert read_state(lib["aiff"]) == GenreState(tuple(OLD_GENRES), None)
    assert main(["tag", "--undo", str(log), "--force"]) == 0
    assert read_state(lib["opus"]) == GenreState(tuple(OLD_GENRES), None)


def test_undo_refuses_a_sort_journal(tmp_path: Path, capsys) -> None:
    j = tmp_path / "j.jsonl"
    j.write_text(json.dumps({"format": "genrekit-undo", "version": 1, "kind": "sort"}) + "\n")
    assert main(["tag", "--undo", str(j)]) == 1
    assert "is a 'sort' log, not a 'tag' log" in capsys.readouterr().err


def test_new_genres_modes() -> None:
    assert new_genres(("Rock", "Blues"), "Jazz", "replace") == ("Jazz",)
    assert new_genres(("Rock", "Blues"), "Jazz", "add") == ("Rock", "Blues", "Jazz")
    assert new_genres(("Rock", "jazz"), "Jazz", "add") == ("Rock", "jazz")  # no duplicate in other case
    assert new_genres(("Rock",), "Jazz", "fill") is None
    assert new_genres((" ",), "Jazz", "fill") == ("Jazz",)
    assert new_genres(("Rock", "Pop"), "Jazz", "add", ours="Pop") == ("Rock", "Jazz")
    assert new_genres(("Pop",), "Jazz", "fill", ours="Pop") == ("Jazz",)


@pytest.mark.skipif(not default_model_available(), reason="default model weights not available")
def test_end_to_end_with_the_default_model(gtzan_clips: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys) -> None:
    from genrekit.prediction import Classifier

    monkeypatch.setattr(Classifier, "load", REAL_LOAD)
    clip = clip_by_stem(gtzan_clips, "jazz/jazz.00000")  # WAV or FLAC: the copy keeps its real extension
    song = tmp_path / clip.name
    shutil.copyfile(clip, song)
    assert main(["tag", str(song)]) == 0
    out = capsys.readouterr()
    state = read_state(song)
    mark = parse_marker(state.marker)
    assert mark["model"] and 0 < float(mark["confidence"]) <= 1
    assert state.genres == (DISPLAY[mark["genre"]],)
    assert "undo log:" in out.err
    logs = list((tmp_path / "state" / "undo").glob("tag-*.jsonl"))
    assert len(logs) == 1
    assert main(["tag", "--undo", str(logs[0])]) == 0
    assert read_state(song) == GenreState((), None)


def test_a_file_changed_meanwhile_is_not_clobbered(lib: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    p = lib["opus"]

    def someone_writes(tmp: Path, real: Path) -> None:  # another program edits it while genrekit works
        with open(real, "ab") as f:
            f.write(b"\0")

    monkeypatch.setattr(tagging, "before_replace", someone_writes)
    with pytest.raises(tagging.TagError, match="changed while genrekit was tagging it"):
        write_state(p, GenreState(("Jazz",), None))
    assert p.read_bytes().endswith(b"\0") and read_state(p).genres == tuple(OLD_GENRES)
    assert not [q for q in p.parent.iterdir() if q.name.endswith(tagging.TMP_SUFFIX)]


def test_symlinks_stay_links_and_hard_links_are_refused(lib: dict[str, Path], tmp_path: Path) -> None:
    link = tmp_path / "link.flac"
    link.symlink_to(lib["flac"])
    write_state(link, GenreState(("Jazz",), None))
    assert link.is_symlink() and read_state(lib["flac"]).genres == ("Jazz",)
    hard = tmp_path / "hard.m4a"
    os.link(lib["m4a"], hard)
    h = sha256(hard)
    with pytest.raises(tagging.TagError, match="2 hard links"):
        write_state(hard, GenreState(("Jazz",), None))
    assert sha256(lib["m4a"]) == h


def test_a_file_named_twice_is_tagged_once(lib: dict[str, Path], capsys) -> None:
    p = lib["wav"]
    assert main(["tag", str(p), str(p.parent), "--mode", "add"]) == 0
    assert capsys.readouterr().out.count(str(p)) == 1
    assert len(read_state(p).genres) == 3


# ------------------------------------------------------- second review (issue 21): ID3v2.3, undo


@pytest.fixture(scope="module")
def mpeg_audio(gtzan_clips: Path) -> bytes:
    return mp3_frames(clip_by_stem(gtzan_clips, "rock/rock.00000"))


def _frames_of(data: bytes) -> list[bytes]:
    """The raw frames of the ID3v2.3 tag at the start of ``data`` (test-side parser)."""
    size = 0
    for b in data[6:10]:
        size = (size << 7) | b
    body, out, pos = data[10:10 + size], [], 0
    while pos + 10 <= len(body) and body[pos] != 0:
        n = int.from_bytes(body[pos + 4:pos + 8], "big")
        out.append(body[pos:pos + 10 + n])
        pos += 10 + n
    return out


@pytest.mark.parametrize("case", ["rich", "v1", "damaged"])
def test_id3v23_tag_keeps_every_other_frame_and_undo_is_byte_exact(mpeg_audio: bytes, tmp_path: Path, case: str,
                                                                     capsys) -> None:
    """Review: TYER became TDRC inside a v2.3 tag, RVAD/TSIZ/TRDA vanished, IPLS became TIPL, the
    ID3v1 tag was rewritten and its fields copied into v2, a malformed frame was dropped, two TCON
    frames were merged, and undo gave back "Rock/Rock/Pop" for "(17)Rock/Pop"."""
    song = v23_mp3(tmp_path / f"{case}.mp3", mpeg_audio, case)
    original = song.read_bytes()
    log = tmp_path / "tag.jsonl"
    assert main(["tag", str(song), "--undo-log", str(log)]) == 0, capsys.readouterr().err
    tagged = song.read_bytes()
    assert tagged[:4] == b"ID3\x03"  # still ID3v2.3
    kept = [f for f in _frames_of(original) if f[:4] != b"TCON"]
    now = _frames_of(tagged)
    assert [f for f in now if f[:4] not in (b"TCON", b"TXXX") or f in kept] == kept  # same bytes, same order
    assert [f[:4] for f in now].count(b"TCON") == 1 and not {f[:4] for f in now} & {b"TDRC", b"TIPL", b"TDOR"}
    label = parse_marker(read_state(song).marker)["genre"]
    assert read_state(song).genres == (DISPLAY[label],)
    assert audio_bytes(song) == mpeg_audio  # not a byte of audio changed
    if case == "v1":
        assert tagged[-128:] == original[-128:]  # the ID3v1 tag is not rewritten
        assert b"v1 " not in tagged[:-128]  # nor copied into v2
        assert len(tagged) == len(original)  # the new frames fit the padding: the audio did not move

    capsys.readouterr()
    assert main(["tag", "--undo", str(log)]) == 0, capsys.readouterr().err
    assert song.read_bytes() == original  # byte for byte
    assert main(["tag", "--undo", str(log)]) == 0  # a second undo finds nothing to do
    assert song.read_bytes() == original


def test_undo_of_a_file_changed_since_restores_the_genre_frame_only(mpeg_audio: bytes, tmp_path: Path,
                                                                   capsys) -> None:
    """When the user changed the file after tagging (here: an appended byte), the original bytes
    cannot come back whole; undo then puts the old genre back and keeps everything else."""
    song = v23_mp3(tmp_path / "rich.mp3", mpeg_audio, "rich")
    log = tmp_path / "tag.jsonl"
    assert main(["tag", str(song), "--undo-log", str(log)]) == 0
    with open(song, "ab") as f:
        f.write(b"\0")
    assert main(["tag", "--undo", str(log)]) == 0, capsys.readouterr().err
    assert read_state(song) == GenreState(("(17)Rock", "Pop"), None)
    frames = _frames_of(song.read_bytes())
    assert V23_FRAMES[8] in frames  # TCON "(17)Rock/Pop" as it was, not "Rock/Rock/Pop"
    assert [f for f in frames if f[:4] != b"TCON"] == [f for f in V23_FRAMES if f[:4] != b"TCON"]


def test_streaming_wav_is_one_clear_line_and_left_alone(tmp_path: Path, capsys) -> None:
    """Review: "unexpected error: 'I' format requires 0 <= number <= 4294967295"."""
    song = streaming_wav(tmp_path / "pipe.wav")
    h = sha256(song)
    assert main(["tag", str(song)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"genrekit: error: {song}: a streaming WAV (its size fields are unset, as a program writing "
                      "to a pipe leaves them); genrekit cannot tag it safely; left as it is")
    assert len(err) == 2 and err[1].startswith("genrekit: failed 1")
    assert sha256(song) == h
    with pytest.raises(tagging.TagError, match="streaming WAV"):
        write_state(song, GenreState(("Jazz",), None))
    assert sha256(song) == h and tagging.unsafe_to_write(song) is not None


@pytest.mark.parametrize("fail_at", [1, 3])
def test_full_disk_on_the_undo_log_stops_cleanly(lib: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys, fail_at: int) -> None:
    """Review: a line per file, then a traceback and an empty log. Now the log line of each file is
    written before it changes; the first one the disk refuses stops the run: one line, exit 1,
    that file and the rest untouched, the log holding exactly the changes made."""
    files = [lib["mp3-v23"], lib["flac"], lib["wav"]]
    hashes = {p: sha256(p) for p in files}
    log = tmp_path / "tag.jsonl"
    free_disk = full_disk_on(monkeypatch, log, fail_at)
    assert main(["tag", *map(str, files), "--undo-log", str(log)]) == 1
    out = capsys.readouterr()
    assert out.err.splitlines() == [f"genrekit: error: {log}: cannot write the undo log (disk full); stopped before "
                                    "changing anything more"]
    changed = [p for p in files if sha256(p) != hashes[p]]
    assert changed == files[: max(fail_at - 2, 0)]  # fsync 1: the header, 2: the first file...
    assert not [q for q in files[0].parent.iterdir() if q.name.endswith(tagging.TMP_SUFFIX)]
    if fail_at == 1:
        assert not log.exists()  # nothing changed, no log
        return
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(x) for x in lines)  # header + the one change, no half line
    free_disk()
    assert main(["tag", "--undo", str(log)]) == 0
    assert {p: sha256(p) for p in files} == hashes


def test_nan_confidence_is_never_good_enough() -> None:
    from genrekit.library.answers import Answer, Rules, decide

    assert decide(Answer("x.mp3", "rock", float("nan")), Rules(0.99)) is not None
    assert decide(Answer("x.mp3", "rock", float("nan")), Rules(0.0)) is not None
    assert decide(Answer("x.mp3", "rock", 0.995), Rules(0.99)) is None


@pytest.mark.parametrize("case", ["wav-untagged", "wav-trailing-bytes", "aiff-untagged", "mp3-unsync", "mp3-untagged"])
def test_containers_and_tag_shapes_round_trip_byte_exact(mpeg_audio: bytes, tmp_path: Path, case: str,
                                                         capsys) -> None:
    """Files genrekit writes a tag into for the first time, a WAV with bytes after its RIFF data
    (an ID3v1 tag some tools append; kept where it is), and a v2.3 tag stored unsynchronised."""
    import soundfile as sf

    from .conftest import tone
    from .library_files import v1_tag, v23_frame, v23_tag

    if case.startswith(("wav", "aiff")):
        song = tmp_path / ("s.wav" if case.startswith("wav") else "s.aiff")
        sf.write(song, tone(1.0, 22050, 440.0), 22050)
        if case == "wav-trailing-bytes":
            with open(song, "ab") as f:
                f.write(v1_tag("t", "a", "b", "2000", "c", 1))
    elif case == "mp3-untagged":
        song = tmp_path / "s.mp3"
        song.write_bytes(mpeg_audio)
    else:  # "\xff\xe0" in a frame is stored as "\xff\x00\xe0" when the tag's unsynchronisation flag is set
        song = tmp_path / "s.mp3"
        frames = v23_frame(b"TIT2", b"\x01\xff\xfe" + "ÿà".encode("utf-16-le")) + v23_frame(b"TCON", b"\x00Rock")
        tag = bytearray(v23_tag([frames.replace(b"\xff", b"\xff\x00")], padding=32))
        tag[5] = 0x80
        song.write_bytes(bytes(tag) + mpeg_audio)
    original = song.read_bytes()
    log = tmp_path / "tag.jsonl"
    assert main(["tag", str(song), "--undo-log", str(log), "--names", "plain"]) == 0, capsys.readouterr().err
    state = read_state(song)
    assert state.genres == (parse_marker(state.marker)["genre"],)
    if case == "wav-trailing-bytes":
        assert song.read_bytes().endswith(original[-128:])
    if case == "mp3-unsync":
        assert song.read_bytes()[5] == 0x80  # still unsynchronised
        import mutagen.id3

        assert str(mutagen.id3.ID3(song)["TIT2"]) == "ÿà"  # the other frame reads as before
    assert np.array_equal(decoded(song), decoded_original(original, song.suffix, tmp_path))
    assert main(["tag", "--undo", str(log)]) == 0
    assert song.read_bytes() == original


def decoded_original(data: bytes, suffix: str, tmp_path: Path) -> np.ndarray:
    p = tmp_path / f"orig{suffix}"
    p.write_bytes(data)
    return decoded(p)


def test_tags_genrekit_does_not_edit_are_one_line_and_untouched(mpeg_audio: bytes, tmp_path: Path, capsys) -> None:
    from .library_files import v23_frame, v23_tag

    ext = bytearray(v23_tag([struct.pack(">I", 6) + bytes(6), v23_frame(b"TCON", b"\x00Rock")]))
    ext[5] = 0x40  # an extended header
    v22 = b"ID3\x02\x00\x00\x00\x00\x00\x10" + b"TCO\x00\x00\x05\x00Rock" + bytes(6)
    cut = v23_tag([v23_frame(b"TIT2", b"\x00title")])[:-3]  # a frame whose size runs past the tag
    cut = cut[:6] + bytes([0, 0, 0, len(cut) - 10]) + cut[10:]
    for name, tag, why in [("ext.mp3", bytes(ext), "extended header"), ("v22.mp3", v22, "ID3v2.2 tag"),
                           ("cut.mp3", cut, "sizes do not add up")]:
        song = tmp_path / name
        song.write_bytes(tag + mpeg_audio)
        h = sha256(song)
        assert main(["tag", str(song)]) == 1
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 2 and err[0].startswith(f"genrekit: error: {song}: ") and why in err[0], err
        assert sha256(song) == h


def test_v23_marker_in_utf16_is_found_and_replaced(mpeg_audio: bytes, tmp_path: Path) -> None:
    """A marker that latin-1 cannot hold is written as UTF-16 in v2.3; a forced re-tag must find
    and replace it (one TXXX:GENREKIT, one TCON), never pile up a second one."""
    song = v23_mp3(tmp_path / "v1.mp3", mpeg_audio, "v1")
    write_state(song, GenreState(("Jazz", "Blues"), "model=/models/✓.safetensors"))
    assert read_state(song) == GenreState(("Jazz", "Blues"), "model=/models/✓.safetensors")
    write_state(song, GenreState(("Rock",), "model=/other/✓"))
    assert read_state(song) == GenreState(("Rock",), "model=/other/✓")
    ids = [f[:4] for f in _frames_of(song.read_bytes())]
    assert ids == [b"TIT2", b"TCON", b"TXXX"]
