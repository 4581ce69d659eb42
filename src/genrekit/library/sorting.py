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
    """Refuse a pattern with unknown fields, an absolute path or '..' before any file is touched."""
    if not pattern or pattern.startswith(("/", "\\")) or os.path.isabs(pattern):
        raise SortError(f"--pattern {pattern!r}: must be a relative path such as {DEFAULT_PATTERN!r}")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
    except ValueError as exc:
        raise SortError(f"--pattern {pattern!r}: {exc}") from None
    unknown = [f for f in fields if f.split(":")[0].split("!")[0] not in FIELDS]
    if unknown:
        raise SortError(f"--pattern {pattern!r}: unknown field {{{unknown[0]}}} (fields: {', '.join(FIELDS)})")
    if any(part in ("", ".", "..") for part in pattern.split("/")):
        raise SortError(f"--pattern {pattern!r}: empty, '.' or '..' folder names are not allowed")


def _clean(value: str) -> str:
    """A field value as one safe path component: no separators, NULs, '.'/'..' or leading dots."""
    v = "".join("_" if c in "/\\\0" or ord(c) < 32 else c for c in str(value)).strip()
    v = v.lstrip(".")
    return v or "_"


def render(pattern: str, path: str | os.PathLike[str], genre: str, label: str, confidence: float,
           nearest: str | None = None) -> Path:
    """The relative destination of ``path`` for its answer (each folder level formatted alone, so a
    value can never add or climb levels)."""
    p = Path(path)
    values = {"genre": _clean(genre), "label": _clean(label), "name": _clean(p.name), "stem": _clean(p.stem),
              "ext": _clean(p.suffix.lstrip(".")) if p.suffix else "", "confidence": f"{confidence:.2f}",
              "nearest": _clean(nearest or label)}
    parts = []
    for part in pattern.split("/"):
        text = part.format(**values).strip()
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






def _claim_file(tmp: Path, dest: Path) -> Path:
    """Give the finished temp file ``tmp`` the first free name from ``dest`` (same folder); atomic."""
    for cand in _candidates(dest):
        try:
            os.link(tmp, cand)
        except FileExistsError:
            continue
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


def place(src: str | os.PathLike[str], dest: Path, action: str, log: Any) -> Path:
    """Copy, move or link ``src`` to ``dest`` (or ``dest``-2, -3...); journal it in ``log``.

    Returns the final path. Any failure leaves the source where and as it was (SortError)."""
    if action not in ACTIONS:
        raise SortError(f"unknown sort action {action!r}")
    source = Path(src)
    real = Path(os.path.abspath(source))
    try:
        made = _make_dirs(dest.parent)
        if action == "link":
            target = os.path.realpath(real)
            for cand in _candidates(dest):
                try:
                    os.symlink(target, cand)
                except FileExistsError:
                    continue
                log.record({"op": "link", "src": str(real), "dest": str(cand), "target": target, "made_dirs": made})
                fsync_dir(cand.parent)
                return cand
        if action == "move" and same_filesystem(real, dest.parent):
            final = _move_same_fs(real, dest, made, log)
            if final is not None:
                return final
        tmp = _copy_to_temp(real, dest.parent)
        try:
            final = _claim_file(tmp, dest)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        fsync_dir(final.parent)
        st = os.stat(final)
        log.record({"op": action, "src": str(real), "dest": str(final), "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns, "made_dirs": made})
        if action == "move":  # cross-filesystem: the source goes only once the copy is safe
            os.unlink(real)
            fsync_dir(real.parent)
        return final
    except SortError:
        raise
    except OSError as exc:
        reason = "disk full" if exc.errno == errno.ENOSPC else exc.strerror or one_line(exc)
        raise SortError(f"{source}: cannot {action} ({reason}); left where it was") from None


def same_filesystem(a: Path, b: Path) -> bool:
    """True when a hard link from ``a`` into folder ``b`` is possible (one device)."""
    return os.stat(a).st_dev == os.stat(b).st_dev


def _move_same_fs(real: Path, dest: Path, made: list[str], log: Any) -> Path | None:
    """A move within one filesystem: hard link under a free name, journal, unlink the source.
    None when the filesystem has no hard links (the caller then copies)."""
    for cand in _candidates(dest):
        try:
            os.link(real, cand)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno in _NO_HARDLINKS:
                return None
            raise
        st = os.stat(cand)
        log.record({"op": "move", "src": str(real), "dest": str(cand), "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns, "made_dirs": made})
        os.unlink(real)
        fsync_dir(cand.parent)
        fsync_dir(real.parent)
        return cand
    raise SortError(f"{dest}: no free name")


def undo_entry(entry: dict[str, Any], force: bool = False) -> str:
    """Reverse one journal entry; returns what was done. SortError when it cannot be done safely."""
    op, src, dest = entry["op"], Path(entry["src"]), Path(entry["dest"])
    if op == "link":
        if not dest.is_symlink():
            raise SortError(f"{dest}: no longer the link genrekit made; left as it is")
        if os.readlink(dest) != entry.get("target") and not force:
            raise SortError(f"{dest}: the link points elsewhere now; left as it is")
        dest.unlink()
        what = f"removed link {dest}"
    else:
        try:
            st = os.stat(dest, follow_symlinks=False)
        except FileNotFoundError:
            raise SortError(f"{dest}: not there any more; nothing to undo") from None
        if (st.st_size, st.st_mtime_ns) != (entry.get("size"), entry.get("mtime_ns")) and not force:
            raise SortError(f"{dest}: changed since it was sorted; left as it is (--force undoes anyway)")
        if op == "copy":
            dest.unlink()
            what = f"removed copy {dest}"
        else:
            if os.path.lexists(src):
                raise SortError(f"{src}: a file has that name again; {dest} left where it is")
            src.parent.mkdir(parents=True, exist_ok=True)
            back = place(dest, src, "move", _NoLog())
            if back != src:  # someone took the name between the check and the move
                raise SortError(f"{src}: name taken meanwhile; the file is at {back}")
            what = f"moved back {dest} -> {src}"
    for d in reversed(entry.get("made_dirs") or []):
        with contextlib.suppress(OSError):
            os.rmdir(d)  # only when empty
    return what


class _NoLog:
    def record(self, entry: dict[str, Any]) -> None:
        pass
