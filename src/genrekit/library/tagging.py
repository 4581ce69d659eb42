"""Read and write a file's own genre field with mutagen, never leaving a broken file behind.

Where the genre lives, per format:

- MP3, WAV, AIFF: an ID3v2 tag (in WAV and AIFF an ``id3 `` chunk), frame ``TCON``, edited frame
  by frame by ``genrekit.library.id3raw`` in the tag's own version (v2.3: several values joined
  with "/", what v2.3 players read; v2.4: NUL-separated; a file without a tag gets v2.4). Every
  other frame keeps its bytes and an MP3's ID3v1 tag is never rewritten: mutagen would re-render
  the whole tag (translating v2.3 frames to v2.4 ones, dropping what it cannot parse). ID3v2.2
  tags, tags with an extended header or footer, damaged tags and containers whose size fields lie
  (a streaming WAV) are refused, untouched;
- FLAC, Ogg Vorbis, Ogg Opus: the ``GENRE`` Vorbis comment (one comment per value);
- M4A / MP4: the ``©gen`` atom.

Any other format raises :class:`CannotTag` and is never opened for writing.

Files genrekit has tagged carry a marker (ID3 ``TXXX:GENREKIT``, Vorbis ``GENREKIT``, MP4
``----:com.apple.iTunes:GENREKIT``) saying what it wrote, so later runs can skip them and
``--mode add --force`` can swap its own earlier value instead of piling values up.

Why the copy-then-rename dance (:func:`write_state`): mutagen edits files in place, so a crash, a
full disk or a kill in the middle would leave a half-written song. Here only a copy in the same
folder is ever edited; the copy is fsynced, given the original's owner, mode, timestamps and
extended attributes, checked (its tags read back as meant, its audio still opens), and renamed
over the original in one atomic step. The original is only ever opened for reading, and a file
that another program changed meanwhile is left as it is.

Undo is byte-exact: just before the rename, the caller's journal gets the SHA-256 of the file
before and after and a recipe that rebuilds the old bytes from the new file (the changed stretch
of the old file, base64; :func:`undo_recipe`). :func:`restore_bytes` applies it while the file is
still exactly what genrekit wrote, and checks the result hashes to the original.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import mmap
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genrekit.errors import GenrekitError, one_line
from genrekit.library import id3raw
from genrekit.models.modelfile import fsync_dir

try:
    import fcntl
except ImportError:  # Windows: no advisory locks to honour (it locks open files itself)
    fcntl = None  # type: ignore[assignment]

MARKER_KEY = "GENREKIT"
_MP4_GENRE = "\xa9gen"
_MP4_MARKER = "----:com.apple.iTunes:GENREKIT"
TMP_SUFFIX = ".genrekit-tmp"

#: Test hook: called with (temp file, original) once the edited copy is complete and synced, just
#: before the last check and the rename over the original (tests kill the process or edit the
#: original here).
before_replace: Callable[[Path, Path], None] | None = None


class TagError(GenrekitError):
    """A file whose genre cannot be read or written; the message names it."""

    def __init__(self, source: object, reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class CannotTag(TagError):
    """A format genrekit does not write genres into (the file is not touched)."""


@dataclass(frozen=True)
class GenreState:
    """What a file says about its genre: the genre values and genrekit's marker (None: none)."""

    genres: tuple[str, ...] = ()
    marker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"genres": list(self.genres), "marker": self.marker}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenreState:
        return cls(tuple(str(g) for g in d.get("genres") or ()), d.get("marker"))


def make_marker(label: str, confidence: float | None, model: str = "", written: str = "") -> str:
    """The marker text: what genrekit decided and wrote, readable in any tag editor."""
    conf = "" if confidence is None else f"{confidence:.3f}"
    return f"genre={label};confidence={conf};model={model};written={written}"


def parse_marker(text: str | None) -> dict[str, str]:
    """``make_marker``'s fields back (empty dict for None or foreign text)."""
    out: dict[str, str] = {}
    for part in (text or "").split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


MODES = ("replace", "add", "fill")


def new_genres(old: tuple[str, ...] | list[str], name: str, mode: str, ours: str | None = None) -> tuple[str, ...] | None:
    """The genre values after writing ``name`` in ``mode``; None when ``fill`` finds a genre.

    ``ours``: the value an earlier genrekit run wrote (from its marker); it is taken out first, so
    a forced re-run swaps genrekit's own value and never touches the user's other genres.
    """
    if mode not in MODES:
        raise GenrekitError(f"unknown tag mode {mode!r} (choose from {', '.join(MODES)})")
    current = [g for g in old if not (ours and g == ours)]
    if mode == "replace":
        return (name,)
    if mode == "fill":
        return None if any(g.strip() for g in current) else (name,)
    if any(g.casefold() == name.casefold() for g in current):
        return tuple(current)
    return (*current, name)


# ------------------------------------------------------------------------------------- formats


def _kind_of(f: Any) -> str | None:
    """"id3", "vorbis" or "mp4" for the formats genrekit writes; None for the rest."""
    from mutagen.aiff import AIFF
    from mutagen.flac import FLAC
    from mutagen.mp3 import MP3
    from mutagen.mp4 import MP4
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis
    from mutagen.wave import WAVE

    if isinstance(f, (MP3, WAVE, AIFF)):
        return "id3"
    if isinstance(f, (FLAC, OggVorbis, OggOpus)):
        return "vorbis"
    if isinstance(f, MP4):
        return "mp4"
    return None


def _container(f: Any) -> str:
    """Where an "id3" kind file keeps its tag (see ``id3raw``)."""
    from mutagen.aiff import AIFF
    from mutagen.wave import WAVE

    return "riff" if isinstance(f, WAVE) else "aiff" if isinstance(f, AIFF) else "mp3"


def _load(path: Path, name: object) -> tuple[Any, str]:
    """(mutagen file, kind); CannotTag for formats outside the list, TagError for broken files."""
    import mutagen

    try:
        f = mutagen.File(path)
    except mutagen.MutagenError as exc:
        cause = exc.__context__ if isinstance(exc.__context__, OSError) else exc
        raise TagError(name, f"cannot read tags ({one_line(cause)})") from None
    except OSError as exc:
        raise TagError(name, f"cannot read ({exc.strerror or one_line(exc)})") from None
    if f is None:
        raise CannotTag(name, "cannot tag this format (genrekit writes MP3, FLAC, Ogg Vorbis, Opus, M4A/MP4, WAV, AIFF)")
    kind = _kind_of(f)
    if kind is None:
        raise CannotTag(name, f"cannot tag {type(f).__name__} files (genrekit writes MP3, FLAC, Ogg Vorbis, "
                        "Opus, M4A/MP4, WAV, AIFF)")
    return f, kind


def format_name(path: str | os.PathLike[str]) -> str:
    """A short description of the file's tag format ("MP3 ID3v2.3", "FLAC"), for messages."""
    f, kind = _load(Path(path), path)
    if kind == "id3" and f.tags is not None:
        return f"{type(f).__name__} ID3v2.{f.tags.version[1]}"
    return type(f).__name__


def _read(f: Any, kind: str) -> GenreState:
    """Genres and marker of a Vorbis-comment or MP4 file (ID3 tags: :func:`_read_id3`)."""
    tags = f.tags
    if tags is None:
        return GenreState()
    if kind == "vorbis":
        genres = tuple(tags["genre"]) if "genre" in tags else ()
        mark = tags[MARKER_KEY][0] if MARKER_KEY in tags else None
    else:
        genres = tuple(tags[_MP4_GENRE]) if _MP4_GENRE in tags else ()
        raw = tags.get(_MP4_MARKER)
        mark = bytes(raw[0]).decode("utf-8", "replace") if raw else None
    return GenreState(tuple(str(g) for g in genres), mark)


def _read_id3(place: id3raw.Place, name: object = "") -> GenreState:
    """The genres and marker of an ID3v2 block, read without translating it to v2.4 and without
    an ID3v1 tag's values mixed in (they are not in the v2 tag, and genrekit never writes them)."""
    try:
        version, genres, mark = id3raw.read(place.block, MARKER_KEY)
    except id3raw.Id3Error as exc:
        raise TagError(name, str(exc)) from None
    if version == 3:  # v2.3 has one text value; "/" separates genres there
        genres = list(_split_v23(tuple(genres)))
    return GenreState(tuple(genres), mark)


def _locate(data: Any, container: str, name: object) -> id3raw.Place:
    try:
        return id3raw.locate(data, container)
    except id3raw.Id3Error as exc:
        raise TagError(name, f"{exc}; left as it is") from None


@contextlib.contextmanager
def _mapped(fd: int) -> Iterator[Any]:
    """The file's bytes, mapped read-only (b"" for an empty file, which mmap refuses)."""
    if os.fstat(fd).st_size == 0:
        yield b""
        return
    m = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    try:
        yield m
    finally:
        with contextlib.suppress(BufferError):  # a memoryview still held by a caller's frame
            m.close()


def _split_v23(genres: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(part for g in genres for part in str(g).split("/"))


def same_genres(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Equal genre lists, counting "A/B" as "A", "B" (how ID3v2.3 stores several)."""
    return _split_v23(tuple(a)) == _split_v23(tuple(b))


def _apply(f: Any, kind: str, state: GenreState) -> None:
    """Set the genre values and the marker on a loaded file (nothing else changes)."""
    if f.tags is None:
        f.add_tags()
    tags = f.tags
    if kind == "vorbis":
        for key, values in (("genre", list(state.genres)), (MARKER_KEY, [] if state.marker is None else [state.marker])):
            if values:
                tags[key] = values
            elif key in tags:
                del tags[key]
    else:
        from mutagen.mp4 import AtomDataType, MP4FreeForm

        if state.genres:
            tags[_MP4_GENRE] = list(state.genres)
        elif _MP4_GENRE in tags:
            del tags[_MP4_GENRE]
        if state.marker is not None:
            tags[_MP4_MARKER] = [MP4FreeForm(state.marker.encode("utf-8"), dataformat=AtomDataType.UTF8)]
        elif _MP4_MARKER in tags:
            del tags[_MP4_MARKER]


def read_state(path: str | os.PathLike[str]) -> GenreState:
    """The file's genre values and genrekit marker (opens it read-only)."""
    f, kind = _load(Path(path), path)
    if kind == "id3":
        with open(path, "rb") as fh, _mapped(fh.fileno()) as data:
            return _read_id3(_locate(data, _container(f), path), path)
    return _read(f, kind)


def check_taggable(path: str | os.PathLike[str]) -> None:
    """Raise CannotTag / TagError when :func:`write_state` would refuse this file for its format or
    its container (a streaming WAV, an ID3 tag genrekit cannot edit frame by frame); reads only."""
    f, kind = _load(Path(path), path)
    if kind == "id3":
        with open(path, "rb") as fh, _mapped(fh.fileno()) as data:
            place = _locate(data, _container(f), path)
        if place.block is not None:
            try:
                id3raw.parse(place.block)
            except id3raw.Id3Error as exc:
                err = TagError(path, str(exc))
                err.unsupported = isinstance(exc, id3raw.Id3Unsupported)  # type: ignore[attr-defined]
                raise err from None


def unsafe_to_write(path: str | os.PathLike[str]) -> str | None:
    """Why writing this file's tags in place (as beets does) would damage it, or None.

    A container whose size fields do not describe the file (a streaming WAV) or an ID3 tag whose
    frames do not add up: writers that trust them insert bytes into the audio or drop frames.
    Formats genrekit does not write and well-formed tags it merely does not edit are not its call
    (None)."""
    try:
        check_taggable(path)
    except CannotTag:
        return None
    except TagError as exc:
        if getattr(exc, "unsupported", False):
            return None
        return exc.reason
    return None


# ---------------------------------------------------------------------------------- safe write




def _writable_or_raise(real: Path, st: os.stat_result, name: object) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise TagError(name, "not a regular file")
    if not os.access(real, os.W_OK) or not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        # no write bit at all is the owner's "do not change" even for root, who may write anyway
        raise TagError(name, "read-only file (permission denied); left as it is")
    if not os.access(real.parent, os.W_OK | os.X_OK):
        raise TagError(name, "cannot write in its folder (permission denied); left as it is")
    if st.st_nlink > 1:
        raise TagError(name, f"file has {st.st_nlink} hard links; replacing it would split them, so it is left as it is")


def _writable_target(path: str | os.PathLike[str]) -> tuple[Path, os.stat_result]:
    """(the file behind any symlink, its stat) once it is known that genrekit may replace it."""
    real = Path(os.path.realpath(path))
    try:
        st = os.stat(real)
    except OSError as exc:
        raise TagError(path, f"cannot read ({exc.strerror or one_line(exc)})") from None
    _writable_or_raise(real, st, path)
    return real, st


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise the TagError :func:`write_state` would raise for permissions, before any log is kept."""
    _writable_target(path)


#: Undo logs keep at most this many of the original file's bytes per file (the tag block is
#: usually a few KB; album art in a grown tag can be MBs); above it, undo restores values only.
MAX_UNDO_BYTES = 64 << 20


def write_state(path: str | os.PathLike[str], state: GenreState, *, expect: GenreState | None = None,
                journal: Callable[[dict[str, Any]], None] | None = None) -> GenreState:
    """Replace the file's genre values and marker by ``state``; return the state it had.

    ``expect``: refuse (TagError) unless the file's current state is this one (undo uses it, so a
    file retagged by someone else since is not overwritten). The file is replaced atomically by an
    edited copy (see the module docstring); symlinks are followed, so the link stays a link.

    ``journal``: called with what undo needs to give the original bytes back (sizes and SHA-256
    of the file before and after, and a recipe rebuilding the old bytes from the new file) once
    the edited copy is complete and before it replaces the original; if it raises, nothing is
    changed. ID3 tags are edited frame by frame (``id3raw``): every frame but the genre and the
    marker keeps its bytes, and an MP3's ID3v1 tag is never rewritten.
    """
    name = path
    real, st = _writable_target(path)
    f0, kind = _load(real, name)  # refuses other formats before anything is copied
    container = _container(f0) if kind == "id3" else ""
    old = _read(f0, kind) if kind != "id3" else GenreState()
    del f0
    with _Rewrite(real, st, name) as rw:
        if kind == "id3":
            place = _locate(rw.data, container, name)
            old = _read_id3(place, name)
        if expect is not None and (old.marker != expect.marker or not same_genres(old.genres, expect.genres)):
            raise TagError(name, "its genre changed since genrekit wrote it; left as it is")
        if kind == "id3":
            if place.block is not None and place.block[3] == 3:
                state = GenreState(_split_v23(state.genres), state.marker)
            try:
                block = id3raw.edit(place.block, list(state.genres), state.marker, MARKER_KEY)
                rw.write_pieces(id3raw.rebuild(rw.data, place, block))
            except id3raw.Id3Error as exc:
                raise TagError(name, f"{exc}; left as it is") from None
            with open(rw.tmp, "rb") as fh, _mapped(fh.fileno()) as data:
                got = _read_id3(_locate(data, container, name), name)
        else:
            rw.write_pieces([(0, len(rw.data))])
            f, kind2 = _load(rw.tmp, name)
            _apply(f, kind2, state)
            f.save()
            del f
            got = _read(_load(rw.tmp, name)[0], kind2)
        if got != state:
            raise TagError(name, f"mutagen did not write the genre as asked ({got.genres} vs {state.genres}); left as it is")
        _check_audio_opens(real, rw.tmp, name)
        rw.commit(journal)
    return old


def restore_bytes(path: str | os.PathLike[str], info: dict[str, Any]) -> bool:
    """Give a file genrekit tagged its original bytes back from an undo log's ``bytes`` record.

    False (nothing done) when the file is no longer exactly what genrekit wrote (someone changed
    it since: the caller then restores the genre values only). The rebuilt file must hash to the
    logged original, else TagError and the file is left as it is."""
    name = path
    recipe = info.get("restore")
    before, after = info.get("before") or {}, info.get("after") or {}
    if not isinstance(recipe, list) or not before.get("sha256") or not after.get("sha256"):
        return False
    real, st = _writable_target(path)
    with _Rewrite(real, st, name) as rw:
        if len(rw.data) != after.get("size") or hashlib.sha256(rw.data).hexdigest() != after["sha256"]:
            return False
        try:
            pieces = [(int(p[1]), int(p[2])) if p[0] == "copy" else base64.b64decode(p[1], validate=True)
                      for p in recipe]
        except (ValueError, TypeError, IndexError, binascii.Error):
            raise TagError(name, "the undo log's record of its original bytes is damaged; left as it is") from None
        if any(isinstance(p, tuple) and not 0 <= p[0] <= p[1] <= len(rw.data) for p in pieces):
            raise TagError(name, "the undo log's record of its original bytes is damaged; left as it is")
        rw.write_pieces(pieces)
        with open(rw.tmp, "rb") as fh, _mapped(fh.fileno()) as data:
            ok = len(data) == before.get("size") and hashlib.sha256(data).hexdigest() == before["sha256"]
        if not ok:
            raise TagError(name, "rebuilding its original bytes did not give the logged file; left as it is")
        rw.commit(None)
    return True


class _Rewrite:
    """One safe replacement of ``real``: the original opened read-only (shared lock, mapped), an
    edited copy written beside it, then :meth:`commit` (fsync, owner/mode/times, journal, last
    look, atomic rename). Leaving the block without a commit removes the copy; OS and mutagen
    errors become one-line TagErrors."""

    def __init__(self, real: Path, st: os.stat_result, name: object) -> None:
        self.real, self.st, self.name = real, st, name
        self.tmp: Path | None = None
        self.data: Any = b""
        self._fd = -1
        self._map: Any = None

    def __enter__(self) -> _Rewrite:
        try:
            self._fd = os.open(self.real, os.O_RDONLY)
        except OSError as exc:
            raise TagError(self.name, f"cannot read ({exc.strerror or one_line(exc)})") from None
        try:
            try:  # advisory lock: a player or tagger holding an exclusive lock is writing it now
                if fcntl is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise TagError(self.name, "file is locked by another program; left as it is") from None
            self._map = _mapped(self._fd)
            self.data = self._map.__enter__()
        except BaseException:
            os.close(self._fd)
            raise
        return self

    def write_pieces(self, pieces: list[Any]) -> None:
        """Write the copy: bytes as given, (start, end) ranges copied from the original."""
        fd, tmp_name = tempfile.mkstemp(dir=self.real.parent, prefix=f".{self.real.name[:80]}.", suffix=TMP_SUFFIX)
        self.tmp = Path(tmp_name)
        with os.fdopen(fd, "wb") as dst:
            view = memoryview(self.data)
            try:
                for p in pieces:
                    dst.write(view[p[0]:p[1]] if isinstance(p, tuple) else p)
            finally:
                view.release()

    def commit(self, journal: Callable[[dict[str, Any]], None] | None) -> None:
        assert self.tmp is not None
        tmp, real, st = self.tmp, self.real, self.st
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _keep_attributes(real, tmp, st, self.name)
        if journal is not None:
            with open(tmp, "rb") as fh, _mapped(fh.fileno()) as new:
                info = {"before": {"size": len(self.data), "sha256": hashlib.sha256(self.data).hexdigest()},
                        "after": {"size": len(new), "sha256": hashlib.sha256(new).hexdigest()},
                        "restore": undo_recipe(self.data, new)}
            journal(info)  # written (and fsynced) before the original is replaced
        if before_replace is not None:
            before_replace(tmp, real)
        # the last look before the rename (POSIX has no compare-and-rename; this narrows the window
        # to microseconds): another program's edit since the copy wins, ours is dropped
        now = os.stat(real)
        if (now.st_size, now.st_mtime_ns, now.st_ino) != (st.st_size, st.st_mtime_ns, st.st_ino):
            raise TagError(self.name, "file changed while genrekit was tagging it; left as it is")
        os.replace(tmp, real)
        self.tmp = None
        fsync_dir(real.parent)

    def __exit__(self, et: Any, exc: Any, tb: Any) -> None:
        with contextlib.suppress(Exception):
            self._map.__exit__(None, None, None)
        os.close(self._fd)
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                self.tmp.unlink()
        if exc is None or isinstance(exc, GenrekitError):
            return
        name = self.name
        if isinstance(exc, OSError):
            if exc.errno == errno.ENOSPC:
                raise TagError(name, "disk full; left as it is") from None
            raise TagError(name, f"cannot write tags ({exc.strerror or one_line(exc)}); left as it is") from None
        import mutagen

        if isinstance(exc, mutagen.MutagenError):  # one line, the file untouched
            raise TagError(name, f"cannot write tags ({one_line(exc)}); left as it is") from None


_CHUNK = 1 << 20
_GAP = 32


def _first_diff(a: Any, b: Any, n: int) -> int:
    """Index of the first differing byte of two uint8 arrays within ``n`` (``n`` when none)."""
    import numpy as np

    for i in range(0, n, _CHUNK):
        d = np.flatnonzero(a[i:min(i + _CHUNK, n)] != b[i:min(i + _CHUNK, n)])
        if d.size:
            return i + int(d[0])
    return n


def undo_recipe(old: Any, new: Any) -> list[list[Any]] | None:
    """How to rebuild ``old`` from ``new``: ``["copy", start, end]`` ranges of ``new`` and
    ``["data", base64]`` pieces of ``old``, the smaller of two plans (one changed stretch between a
    common start and end, as when an MP3's tag grows; or changes at the same offsets, as when a
    WAV's ID3 chunk and its RIFF size change). None when more than MAX_UNDO_BYTES would be kept."""
    import numpy as np

    a = np.frombuffer(old, np.uint8) if len(old) else np.zeros(0, np.uint8)
    b = np.frombuffer(new, np.uint8) if len(new) else np.zeros(0, np.uint8)
    n = min(len(a), len(b))
    p = _first_diff(a, b, n)
    m = n - p
    s = _first_diff(a[len(a) - m:][::-1], b[len(b) - m:][::-1], m) if m else 0
    plans: list[tuple[int, list[Any]]] = [(len(a) - s - p, [("copy", 0, p), ("data", p, len(a) - s),
                                                              ("copy", len(b) - s, len(b))])]
    if plans[0][0] > 64 << 10:
        ranges: list[list[int]] = []
        for i in range(0, n, _CHUNK):
            d = np.flatnonzero(a[i:min(i + _CHUNK, n)] != b[i:min(i + _CHUNK, n)])
            if not d.size:
                continue
            cuts = np.flatnonzero(np.diff(d) > _GAP)
            for lo, hi in zip(d[np.r_[0, cuts + 1]] + i, d[np.r_[cuts, d.size - 1]] + i + 1, strict=True):
                if ranges and lo - ranges[-1][1] <= _GAP:
                    ranges[-1][1] = int(hi)
                else:
                    ranges.append([int(lo), int(hi)])
            if len(ranges) > 4096:
                break
        else:
            pieces: list[Any] = []
            at = 0
            for lo, hi in ranges:
                pieces += [("copy", at, lo), ("data", lo, hi)]
                at = hi
            pieces += [("copy", at, n), ("data", n, len(a))]
            plans.append((sum(hi - lo for lo, hi in ranges) + len(a) - n, pieces))
    cost, plan = min(plans, key=lambda c: c[0])
    if cost > MAX_UNDO_BYTES:
        return None
    out: list[list[Any]] = []
    for what, lo, hi in plan:
        if lo < hi:
            out.append(["copy", lo, hi] if what == "copy" else ["data", base64.b64encode(bytes(a[lo:hi])).decode("ascii")])
    return out


def _check_audio_opens(real: Path, tmp: Path, name: object) -> None:
    """The edited copy must open as audio as the original does (same rate, channels, duration;
    read the way players read containers); a copy that fails is thrown away."""
    from genrekit.audio import audio_info
    from genrekit.errors import AudioError

    try:
        before = audio_info(real)
    except AudioError:
        return  # the original does not open either: nothing to compare with
    try:
        after = audio_info(tmp)
    except AudioError as exc:
        raise TagError(name, f"the tagged copy would not open as audio ({exc.reason}); left as it is") from None
    if (after.sample_rate, after.channels) != (before.sample_rate, before.channels) or \
            abs(after.duration_s - before.duration_s) > 1e-3:
        raise TagError(name, "the tagged copy's audio would differ from the original's; left as it is")


def _keep_attributes(real: Path, tmp: Path, st: os.stat_result, name: object) -> None:
    """Give the copy the original's owner, mode, timestamps and extended attributes."""
    if hasattr(os, "chown") and (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
        try:
            os.chown(tmp, st.st_uid, st.st_gid)
        except PermissionError:
            try:  # the group alone may be allowed (a member of the file's group)
                os.chown(tmp, -1, st.st_gid)
            except PermissionError:
                pass
            if os.stat(tmp).st_uid != st.st_uid:
                raise TagError(name, "cannot keep the file's owner (it belongs to another user); left as it is") from None
    shutil.copystat(real, tmp)  # mode, atime/mtime (ns), flags, xattrs (ACLs among them)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
