"""Copy, move or link files into genre folders without ever overwriting or losing one.

Rules, and why:

- A destination name is *claimed* atomically (a hard link or ``O_EXCL`` creation, never a check
  followed by a write), so a second "song.mp3" becomes "song-2.mp3" even if another program
  writes into the folder at the same time.
- A copy is written to a temp file in the destination folder, fsynced, given the source's
  timestamps and mode, and only then claimed under its name: a crash leaves at worst a hidden
  temp file, never a half-copied song under a real name.
- A move within one filesystem is a hard link plus unlink (or a rename onto a claimed name);
  across filesystems it is copy + fsync + claim, and the source is deleted only after that.
- Every change is journalled (``undo.UndoLog``) before the step that could lose the source, so
  ``genrekit sort --undo JOURNAL`` can put moves back and delete copies and links.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import string
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genrekit.errors import GenrekitError, one_line
from genrekit.models.modelfile import fsync_dir

ACTIONS = ("copy", "move", "link")
DEFAULT_PATTERN = "{genre}/{name}"
FIELDS = ("genre", "label", "name", "stem", "ext", "confidence", "nearest")
TMP_SUFFIX = ".genrekit-tmp"
_NO_HARDLINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV, errno.ENOSYS)


class SortError(GenrekitError):
    """A file that cannot be placed (the message names it); the source is left as it was."""


def check_pattern(pattern: str) -> None:
    """Refuse a pattern with unknown fields, nested or bad format specs, an absolute path or '..'
    before any file is touched (a trial render with sample values catches what parsing cannot)."""
    if not pattern or pattern.startswith(("/", "\\")) or os.path.isabs(pattern):
        raise SortError(f"--pattern {pattern!r}: must be a relative path such as {DEFAULT_PATTERN!r}")
    try:
        parsed = [(f, spec) for _, f, spec, _ in string.Formatter().parse(pattern) if f is not None]
    except ValueError as exc:
        raise SortError(f"--pattern {pattern!r}: {exc}") from None
    unknown = [f for f, _ in parsed if f.split(":")[0].split("!")[0] not in FIELDS]
    if unknown:
        raise SortError(f"--pattern {pattern!r}: unknown field {{{unknown[0]}}} (fields: {', '.join(FIELDS)})")
    nested = [f for f, spec in parsed if spec and ("{" in spec or "}" in spec)]
    if nested:
        raise SortError(f"--pattern {pattern!r}: a field inside a format spec ({{{nested[0]}:...}}) is not allowed")
    if any(part in ("", ".", "..") for part in pattern.split("/")):
        raise SortError(f"--pattern {pattern!r}: empty, '.' or '..' folder names are not allowed")
    render(pattern, "song.mp3", "Jazz", "jazz", 0.5, "jazz")


def _clean(value: str) -> str:
    """A field value as one safe path component: no separators, NULs, '.'/'..' or leading dots."""
    v = "".join("_" if c in "/\\\0" or ord(c) < 32 else c for c in str(value)).strip()
    v = v.lstrip(".")
    return v or "_"


class _Confidence(float):
    """The confidence as a pattern field: two decimals by default, any float format spec otherwise."""

    def __format__(self, spec: str) -> str:
        return float.__format__(self, spec or ".2f")


def render(pattern: str, path: str | os.PathLike[str], genre: str, label: str, confidence: float,
           nearest: str | None = None) -> Path:
    """The relative destination of ``path`` for its answer (each folder level formatted alone, and
    separators a format spec might pad with replaced, so a value can never add or climb levels).
    SortError (one line) for a format spec that does not fit its field, such as ``{confidence:d}``."""
    p = Path(path)
    values = {"genre": _clean(genre), "label": _clean(label), "name": _clean(p.name), "stem": _clean(p.stem),
              "ext": _clean(p.suffix.lstrip(".")) if p.suffix else "", "confidence": _Confidence(confidence),
              "nearest": _clean(nearest or label)}
    parts = []
    for part in pattern.split("/"):
        try:
            text = part.format(**values)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise SortError(f"--pattern {pattern!r}: {part!r} cannot be formatted ({one_line(exc)})") from None
        text = "".join("_" if c in "/\\\0" or ord(c) < 32 else c for c in text).strip()
        if text in ("", ".", ".."):
            text = "_"
        parts.append(text)
    return Path(*parts)


def _candidates(dest: Path):
    yield dest
    stem, suffix = dest.stem, dest.suffix
    for i in range(2, 100000):
        yield dest.with_name(f"{stem}-{i}{suffix}")


def free_name(dest: Path) -> Path:
    """The name a file would get now (for --dry-run; a real run claims atomically)."""
    for cand in _candidates(dest):
        if not os.path.lexists(cand):
            return cand
    raise SortError(f"{dest}: no free name")






def _claim_file(tmp: Path, dest: Path, journal: Callable[[Path], None]) -> Path:
    """Give the finished temp file ``tmp`` the first free name from ``dest`` (same folder); atomic.
    ``journal(name)`` is called (and must have written its line) before each name is taken."""
    for cand in _candidates(dest):
        if os.path.lexists(cand):
            continue
        journal(cand)
        try:
            os.link(tmp, cand)
        except FileExistsError:
            continue  # taken since the look: the journal's line for it is void (undo checks the inode)
        except OSError as exc:
            if exc.errno not in _NO_HARDLINKS:
                raise
            try:  # filesystems without hard links (FAT, some network shares): claim, then rename onto it
                os.close(os.open(cand, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                continue
            os.replace(tmp, cand)
            return cand
        os.unlink(tmp)
        return cand
    raise SortError(f"{dest}: no free name")


def _copy_to_temp(src: Path, folder: Path) -> Path:
    """A complete, fsynced copy of ``src`` (content, mode, timestamps) as a hidden temp file."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{src.name[:80]}.", suffix=TMP_SUFFIX)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as dst, open(src, "rb") as s:
            shutil.copyfileobj(s, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        shutil.copystat(src, tmp)
        if os.path.getsize(tmp) != os.path.getsize(src):
            raise SortError(f"{src}: the copy came out a different size; nothing changed")
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp


def _make_dirs(folder: Path) -> list[str]:
    """mkdir -p, returning the folders it created (so undo can remove them when empty)."""
    made = []
    missing = []
    p = folder
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir()
            made.append(str(d))
    return made


def _remove_made(made: list[str]) -> None:
    for d in reversed(made):
        with contextlib.suppress(OSError):
            os.rmdir(d)  # only when empty


def place(src: str | os.PathLike[str], dest: Path, action: str, log: Any) -> Path:
    """Copy, move or link ``src`` to ``dest`` (or ``dest``-2, -3...); journal it in ``log``.

    Each journal line is written (fsynced) before the name it describes is taken, so no file ever
    sits in the target without one; a journal that cannot be written (a full disk) raises
    UndoError before anything is placed. Returns the final path. Any other failure leaves the
    source where and as it was and nothing new in the target (SortError)."""
    if action not in ACTIONS:
        raise SortError(f"unknown sort action {action!r}")
    source = Path(src)
    real = Path(os.path.abspath(source))
    made: list[str] = []
    try:
        if action == "move" and not os.access(real.parent, os.W_OK | os.X_OK):
            raise SortError(f"{source}: cannot move it out of its folder (permission denied); left where it was")
        made = _make_dirs(dest.parent)
        if action == "link":
            target = os.path.realpath(real)
            for cand in _candidates(dest):
                if os.path.lexists(cand):
                    continue
                log.record({"op": "link", "src": str(real), "dest": str(cand), "target": target, "made_dirs": made})
                try:
                    os.symlink(target, cand)
                except FileExistsError:
                    continue
                fsync_dir(cand.parent)
                return cand
            raise SortError(f"{dest}: no free name")
        if action == "move" and os.path.islink(real):
            return _move_link(real, dest, made, log)
        if action == "move" and same_filesystem(real, dest.parent):
            final = _move_same_fs(real, dest, made, log)
            if final is not None:
                return final
        tmp = _copy_to_temp(real, dest.parent)
        try:
            st = os.stat(tmp)

            def journal(cand: Path) -> None:
                log.record({"op": action, "src": str(real), "dest": str(cand), "size": st.st_size,
                            "mtime_ns": st.st_mtime_ns, "ino": st.st_ino, "made_dirs": made})

            final = _claim_file(tmp, dest, journal)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        fsync_dir(final.parent)
        if action == "move":  # cross-filesystem: the source goes only once the copy is safe
            _unlink_or_roll_back(real, final, source)
        return final
    except SortError:
        _remove_made(made)
        raise
    except GenrekitError:  # the journal cannot be written: nothing was placed
        _remove_made(made)
        raise
    except OSError as exc:
        _remove_made(made)
        reason = "disk full" if exc.errno == errno.ENOSPC else exc.strerror or one_line(exc)
        raise SortError(f"{source}: cannot {action} ({reason}); left where it was") from None


def _unlink_or_roll_back(real: Path, placed: Path, source: object) -> None:
    """Remove the moved file's source; when that fails, remove the new name instead, so a failed
    move leaves the file where it was and nothing in the target."""
    try:
        os.unlink(real)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(placed)
            fsync_dir(placed.parent)
        raise SortError(f"{source}: cannot remove it from its folder ({exc.strerror or one_line(exc)}); "
                        "left where it was, nothing placed") from None
    fsync_dir(real.parent)


def same_filesystem(a: Path, b: Path) -> bool:
    """True when a hard link from ``a`` into folder ``b`` is possible (one device)."""
    return os.stat(a).st_dev == os.stat(b).st_dev


def _move_same_fs(real: Path, dest: Path, made: list[str], log: Any) -> Path | None:
    """A move within one filesystem: journal, hard link under a free name, unlink the source.
    None when the filesystem has no hard links (the caller then copies)."""
    st = os.stat(real)
    for cand in _candidates(dest):
        if os.path.lexists(cand):
            continue
        log.record({"op": "move", "src": str(real), "dest": str(cand), "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns, "ino": st.st_ino, "made_dirs": made})
        try:
            os.link(real, cand)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno in _NO_HARDLINKS:
                return None
            raise
        fsync_dir(cand.parent)
        _unlink_or_roll_back(real, cand, real)
        return cand
    raise SortError(f"{dest}: no free name")


def _move_link(real: Path, dest: Path, made: list[str], log: Any) -> Path:
    """``--move`` of a symbolic link: the link moves, as a link to the same file by its absolute
    path (a relative link would dangle in its new folder); undo puts the original link text back."""
    text = os.readlink(real)
    target = os.path.realpath(real)
    for cand in _candidates(dest):
        if os.path.lexists(cand):
            continue
        log.record({"op": "movelink", "src": str(real), "dest": str(cand), "link": text, "target": target,
                    "made_dirs": made})
        try:
            os.symlink(target, cand)
        except FileExistsError:
            continue
        fsync_dir(cand.parent)
        _unlink_or_roll_back(real, cand, real)
        return cand
    raise SortError(f"{dest}: no free name")


def _same_content(a: Path, b: Path) -> bool:
    import filecmp

    try:
        return os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def undo_entry(entry: dict[str, Any], force: bool = False) -> tuple[str, str]:
    """Reverse one journal entry: (status, what was done), status "undone" or "unchanged".

    A copy or moved file is removed only while its source still exists with the same content (a
    duplicate); when the source is gone it is moved back there instead, so undo never removes the
    last copy of a file. SortError when it cannot be done safely (the file is kept, and why)."""
    op, src, dest = entry["op"], Path(entry["src"]), Path(entry["dest"])
    if op == "link":
        if not dest.is_symlink():
            raise SortError(f"{dest}: no longer the link genrekit made; left as it is")
        if os.readlink(dest) != entry.get("target") and not force:
            raise SortError(f"{dest}: the link points elsewhere now; left as it is")
        dest.unlink()
        what = ("undone", f"removed link {dest}")
    elif op == "movelink":
        if not dest.is_symlink() or (os.readlink(dest) != entry.get("target") and not force):
            if not os.path.lexists(dest) and os.path.islink(src):
                return "unchanged", f"{dest}: not there; the link {src} is where it was"
            raise SortError(f"{dest}: no longer the link genrekit moved; left as it is")
        if os.path.lexists(src):
            if os.path.islink(src) and os.readlink(src) == entry.get("link"):
                dest.unlink()  # the move was cut short before the old link went: drop the new one
                return "undone", f"removed link {dest} (the link {src} is still there)"
            raise SortError(f"{src}: a file has that name again; the link {dest} left where it is")
        src.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(str(entry["link"]), src)
        dest.unlink()
        fsync_dir(src.parent)
        what = ("undone", f"moved link back {dest} -> {src}")
    else:
        try:
            st = os.stat(dest, follow_symlinks=False)
        except FileNotFoundError:
            if os.path.lexists(src):
                return "unchanged", f"{dest}: not there; {src} is where it was"
            raise SortError(f"{dest}: not there any more, and {src} is gone too; nothing to undo") from None
        if "ino" in entry and st.st_ino != entry["ino"]:
            return "unchanged", f"{dest}: not the file this run placed (the name was taken meanwhile); left as it is"
        if (st.st_size, st.st_mtime_ns) != (entry.get("size"), entry.get("mtime_ns")) and not force:
            raise SortError(f"{dest}: changed since it was sorted; left as it is (--force undoes anyway)")
        if os.path.lexists(src):
            if not _same_content(src, dest):
                raise SortError(f"kept {dest}: {src} exists but differs from it, so this may be the only copy "
                                "of what was sorted; left where it is")
            dest.unlink()
            fsync_dir(dest.parent)
            what = ("undone", f"removed {dest} ({src} is still there, same content)")
        else:
            src.parent.mkdir(parents=True, exist_ok=True)
            back = place(dest, src, "move", _NoLog())
            if back != src:  # someone took the name between the check and the move
                raise SortError(f"{src}: name taken meanwhile; the file is at {back}")
            why = " (the source was gone: this was the last copy)" if op == "copy" else ""
            what = ("undone", f"moved back {dest} -> {src}{why}")
    _remove_made(entry.get("made_dirs") or [])
    return what


class _NoLog:
    def record(self, entry: dict[str, Any]) -> None:
        pass
