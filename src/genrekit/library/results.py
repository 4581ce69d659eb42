"""Read a ``genrekit batch`` result (a Parquet dataset folder) as the newest row per input.

The batch writes one row per input with at least ``input`` (absolute path), ``size``,
``mtime``, ``genre``, ``confidence`` and ``error`` ("" when fine), and may add ``nearest``,
``in_set``, ``style``, ``model``; extra columns are kept as they are. A folder may hold several
runs' files (a resumed or repeated batch), so an input can have several rows: the newest wins,
by a time column when the result has one (``analysed_at``, ``finished_at``, ``created_at``,
``timestamp``, ``time``), otherwise by the dataset's order (later files and rows are newer).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from genrekit.errors import GenrekitError, one_line

REQUIRED = ("input", "genre", "confidence")
TIME_COLUMNS = ("analysed_at", "finished_at", "created_at", "timestamp", "time")


class ResultsError(GenrekitError):
    """A results folder that is missing or not a genrekit batch result."""


def read_results(folder: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """``{absolute input path: newest row}`` of the batch result in ``folder``."""
    p = Path(folder)
    if not p.exists():
        raise ResultsError(f"{p}: no such results folder")
    try:
        import pyarrow.dataset as ds
    except ImportError:
        raise ResultsError("--from needs pyarrow: pip install 'genrekit[tag]'") from None
    try:
        dataset = ds.dataset(str(p), format="parquet", exclude_invalid_files=True)
        names = set(dataset.schema.names)
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise ResultsError(f"{p}: not a genrekit batch result (no column {', '.join(missing)})")
        rows = dataset.to_table().to_pylist()
    except ResultsError:
        raise
    except Exception as exc:  # pyarrow's errors: broken or foreign files
        raise ResultsError(f"{p}: cannot read the batch result ({one_line(exc)})") from None
    time_col = next((c for c in TIME_COLUMNS if c in names), None)
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = row.get("input")
        if not isinstance(key, str) or not key:
            continue
        key = os.path.abspath(key)
        old = out.get(key)
        if old is not None and time_col is not None:
            t_new, t_old = row.get(time_col), old.get(time_col)
            if t_new is not None and t_old is not None and t_new < t_old:
                continue
        out[key] = row
    return out


def row_is_fresh(row: dict[str, Any], path: str | os.PathLike[str]) -> bool:
    """True when ``row`` answers for the file as it is now: no error, a genre, and the file's size
    and mtime unchanged since the batch read it (mtime to a millisecond: Parquet float seconds)."""
    if row.get("error") or not row.get("genre"):
        return False
    conf = row.get("confidence")
    if not isinstance(conf, (int, float)) or not math.isfinite(conf):
        return False
    size, mtime = row.get("size"), row.get("mtime")
    if size is None or mtime is None:
        return False
    try:
        st = os.stat(path)
    except OSError:
        return False
    return int(size) == st.st_size and abs(float(mtime) - st.st_mtime) < 1e-3
