"""What to classify: the SOURCES of ``genrekit batch`` expanded to one list of inputs.

A source is an audio file, a folder (searched recursively, as ``predict`` does), an http(s) URL,
``@list.txt`` (one path or URL a line; blank lines and ``#`` comments skipped) or a ``.csv`` /
``.parquet`` table with a path column (``path``, ``input``, ``file`` or ``filename``, first found).
Relative paths inside a list or table are read relative to that file's folder (as playlists do),
so a list keeps working when the command runs elsewhere.

Every file input becomes its absolute path, which is the row key together with the file's size and
mtime; a URL is its own key (size and mtime unknown). Duplicates are dropped (first one kept), so a
track named twice is classified and written once.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from genrekit.errors import GenrekitError

PATH_COLUMNS = ("path", "input", "file", "filename")


@dataclass(frozen=True)
class Task:
    """One input to classify and its resume key (``size``/``mtime`` None for URLs and missing files)."""

    input: str
    size: int | None = None
    mtime: float | None = None
    error: str = ""  # a source-level problem (e.g. a folder without audio): written as a failed row

    def key(self) -> tuple[str, int | None, float | None]:
        return (self.input, self.size, self.mtime)


def _is_url(text: str) -> bool:
    from genrekit.urls import is_url

    return is_url(text)


def _table_paths(path: Path) -> list[str]:
    """The path column of a CSV or Parquet table of inputs."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(path).names
        except Exception as exc:
            raise GenrekitError(f"{path}: cannot read this Parquet file ({type(exc).__name__})") from None
        col = next((c for c in PATH_COLUMNS if c in names), None)
        if col is None:
            raise GenrekitError(f"{path}: no path column (looked for {', '.join(PATH_COLUMNS)})")
        values = pq.read_table(path, columns=[col]).column(col).to_pylist()
        return [str(v) for v in values if v not in (None, "")]
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            col = next((c for c in PATH_COLUMNS if c in (reader.fieldnames or [])), None)
            if col is None:
                raise GenrekitError(f"{path}: no path column in the header (looked for {', '.join(PATH_COLUMNS)})")
            return [row[col] for row in reader if row.get(col)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise GenrekitError(f"{path}: cannot read this CSV ({type(exc).__name__})") from None


def _list_paths(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GenrekitError(f"@{path}: cannot read this list ({type(exc).__name__})") from None
    return [s.strip() for s in text.splitlines() if s.strip() and not s.strip().startswith("#")]


def _one(raw: str, base: Path | None) -> Iterator[Task]:
    """Tasks of one path or URL (a folder gives its audio files)."""
    from genrekit.audio import audio_files_under

    if _is_url(raw):
        yield Task(raw)
        return
    p = Path(raw).expanduser()
    if base is not None and not p.is_absolute():
        p = base / p
    p = Path(os.path.abspath(p))  # absolute, without resolving links: the name the user's files have
    if p.is_dir():
        problems: list[tuple[Path, str]] = []  # dangling links, link loops, unreadable folders
        files = audio_files_under(p, problems)
        if not files and not problems:
            yield Task(str(p), error="folder holds no audio files")
        for f in files:
            yield stat_task(str(f))
        for where, reason in problems:  # one failed row each; never the whole batch
            yield Task(str(where), error=reason)
    else:
        yield stat_task(str(p))


def stat_task(path: str) -> Task:
    """A file's task with its size and mtime (None when it cannot be read: the worker says why)."""
    try:
        st = os.stat(path)
    except OSError:
        return Task(path)
    return Task(path, int(st.st_size), float(st.st_mtime))


def expand_sources(sources: Iterable[str]) -> list[Task]:
    """All inputs of ``sources`` in order, duplicates dropped. A list or table that cannot be read
    is an error for the whole command (nothing has run yet); a bad entry inside one is a failed row."""
    out: list[Task] = []
    seen: set[str] = set()
    for src in sources:
        if src.startswith("@"):
            lst = Path(src[1:]).expanduser()
            items: Iterable[Task] = (t for raw in _list_paths(lst) for t in _one(raw, lst.parent))
        elif not _is_url(src) and Path(src).suffix.lower() in (".csv", ".parquet") and Path(src).is_file():
            tbl = Path(src)
            items = (t for raw in _table_paths(tbl) for t in _one(raw, tbl.parent))
        else:
            items = _one(src, None)
        for t in items:
            if t.input not in seen:
                seen.add(t.input)
                out.append(t)
    return out
