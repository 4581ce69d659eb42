"""Undo logs of ``genrekit tag`` and journals of ``genrekit sort``: JSON lines, written ahead.

Each run that changes files opens one log; a line for a file is written (flushed and fsynced)
*before* that file is changed, so a run killed at any point leaves a log that covers every change
it made. The first line says what kind of log it is, so ``tag --undo`` never replays a sort
journal. Logs go to ``--undo-log PATH`` or to ``$GENREKIT_STATE_DIR`` (default
``$XDG_STATE_HOME/genrekit``, i.e. ``~/.local/state/genrekit``) under ``undo/``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from genrekit.errors import GenrekitError
from genrekit.models.modelfile import fsync_dir

FORMAT = "genrekit-undo"
VERSION = 1


class UndoError(GenrekitError):
    """A log that cannot be written, read, or is not the kind asked for."""


def state_dir() -> Path:
    env = os.environ.get("GENREKIT_STATE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state") / "genrekit"


def default_log_path(kind: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return state_dir() / "undo" / f"{kind}-{stamp}.jsonl"


class UndoLog:
    """An append-only, fsynced JSON-lines log; created on the first entry (a run that changes
    nothing leaves no log)."""

    def __init__(self, path: str | os.PathLike[str], kind: str) -> None:
        self.path = Path(path)
        self.kind = kind
        self._f: IO[str] | None = None
        self.entries = 0

    def _open(self) -> IO[str]:
        if self._f is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                raise UndoError(f"{self.path}: undo log exists already; genrekit never overwrites one") from None
            except OSError as exc:
                raise UndoError(f"{self.path}: cannot write the undo log ({exc.strerror or exc})") from None
            self._f = os.fdopen(fd, "w", encoding="utf-8")
            try:
                self._write({"format": FORMAT, "version": VERSION, "kind": self.kind,
                             "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
            except UndoError:
                self.close()
                raise
            with contextlib.suppress(OSError):  # the log's name survives a crash too
                fsync_dir(self.path.parent)
        return self._f

    def _write(self, obj: dict[str, Any]) -> None:
        """Append one line and fsync it; on failure (a full disk, an I/O error) cut the file back to
        its last whole line and raise UndoError, so the caller stops before making the change."""
        f = self._f
        assert f is not None
        line = json.dumps(obj, ensure_ascii=False) + "\n"
        fd = f.fileno()
        try:
            at = os.lseek(fd, 0, os.SEEK_END)
            _append(fd, line.encode("utf-8"))
            os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, at)
                os.fsync(fd)
            reason = "disk full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
            what = "journal" if self.kind == "sort" else "undo log"
            raise UndoError(f"{self.path}: cannot write the {what} ({reason}); stopped before changing "
                            "anything more") from None

    def record(self, entry: dict[str, Any]) -> None:
        """Write one entry durably; call before making the change it describes."""
        self._open()
        self._write(entry)
        self.entries += 1

    def close(self) -> None:
        if self._f is not None:
            with contextlib.suppress(OSError):  # every line was fsynced already
                self._f.close()
            self._f = None
            if self.entries == 0:  # only the header (its first entry could not be written)
                with contextlib.suppress(OSError):
                    self.path.unlink()

    def __enter__(self) -> UndoLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _append(fd: int, data: bytes) -> None:
    """Write all of ``data`` (tests make this fail as a full disk does)."""
    done = 0
    while done < len(data):
        done += os.write(fd, data[done:])


def read_log(path: str | os.PathLike[str], kind: str) -> Iterator[dict[str, Any]]:
    """The entries of a log of ``kind`` (header checked), oldest first. A last line cut short by a
    crash is ignored: its change never started (entries are written before changes)."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise UndoError(f"{p}: cannot read the undo log ({reason})") from None
    try:
        head = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        head = {}
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise UndoError(f"{p}: not a genrekit undo log")
    if head.get("kind") != kind:
        raise UndoError(f"{p}: this is a '{head.get('kind')}' log, not a '{kind}' log")
    for n, line in enumerate(lines[1:], 2):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):
                return
            raise UndoError(f"{p}: line {n} is not valid JSON") from None
        yield entry
