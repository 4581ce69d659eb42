"""The dataset folder of ``genrekit batch``: lock, resume index, Parquet parts, run record.

Rows are committed in parts: ``part-<run>-<n>.parquet``, each written to a hidden temp file in the
same folder, fsynced, then renamed into place (and the folder fsynced), so a reader or a crash sees
a whole part or none. A part is committed every ``rows_per_part`` rows or ``seconds_per_part``
seconds, and when the run ends or is interrupted (Ctrl-C, SIGTERM), so a SIGKILL or a power cut
loses only the rows of the part being filled; nothing ever rewrites one growing file.

Resume: the index is the ``(input, size, mtime, model_hash, error)`` columns of every part. An input
whose key and model already have a row is skipped; a failed row is retried only with
``--redo-failed``. Before such a retry (and when a file changed: same path and model, new size or
mtime) the old row is removed first, by rewriting its part atomically without it, so the folder
keeps one row per input and model, never two.

Names starting with ``.`` or ``_`` (temp files, the lock, ``_genrekit_run.json``) are skipped by
pyarrow, pandas, polars, Spark and DuckDB globs of ``*.parquet``, so the folder reads as one table.

Damage from outside (a part truncated by a full disk of an older version, a copy cut short): a part
that does not read is never fatal. ``--report`` leaves it out and names it; a resumed run moves it
aside to ``_damaged-<name>`` (kept for the user, skipped by every reader) and classifies its inputs
again, since they have no row any more. A write that fails (read-only folder, full disk) stops the
run with one line (:class:`DatasetWriteError`); the part being written never appears, earlier parts
stay whole, and the same command goes on from there.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genrekit.batch.rows import schema
from genrekit.batch.sources import Task
from genrekit.errors import GenrekitError
from genrekit.models.modelfile import atomic_path, fsync_dir, write_json_atomic

RUN_FILE = "_genrekit_run.json"
LOCK_FILE = ".genrekit.lock"
PART_PREFIX = "part-"


DAMAGED_PREFIX = "_damaged-"


class DatasetWriteError(GenrekitError):
    """The dataset folder cannot be written (read-only, full disk, gone): the run stops here."""

    def __init__(self, root: Path, exc: OSError) -> None:
        code = exc.errno
        if code is None:  # an IOError of pyarrow's may keep the errno in its text only: "[errno 28] ..."
            m = re.search(r"\[errno (\d+)\]", str(exc))
            code = int(m.group(1)) if m else None
        reason = {errno.ENOSPC: "no space left on the disk", errno.EDQUOT: "disk quota exceeded",
                  errno.EROFS: "the folder is read-only", errno.EACCES: "permission denied",
                  errno.EPERM: "permission denied", errno.EFBIG: "file too large for this file system or limit",
                  }.get(code or 0, exc.strerror or (str(exc).splitlines() or [type(exc).__name__])[0][:120])
        super().__init__(f"{root}: cannot write the batch dataset ({reason}); nothing half-written was left, "
                         "the rows committed before are kept: fix it and run the same command again to go on")


def write_table_atomic(table: Any, path: Path) -> None:
    """One Parquet file, all or nothing: temp file beside it, fsync, rename, fsync the folder.
    Any failure (a full disk mid-write) removes the temp file and raises :class:`DatasetWriteError`."""
    import pyarrow.parquet as pq

    try:
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp, compression="zstd")
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
    except OSError as exc:  # pyarrow's IO errors are OSErrors too
        raise DatasetWriteError(path.parent, exc) from None
    fsync_dir(path.parent)


def read_part(part: Path, columns: list[str] | None = None) -> Any:
    """One part as a pyarrow Table; :class:`DamagedPart` when it does not read as Parquet."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(part, columns=columns)
    except OSError as exc:
        if exc.errno:  # the file is fine as far as we know, the system will not give it (EACCES, EIO)
            raise GenrekitError(f"{part}: cannot read this part ({exc.strerror or exc})") from None
        raise DamagedPart(part, exc) from None  # pyarrow's IOError about the bytes (bad compression)
    except (ValueError, KeyError, TypeError) as exc:  # ArrowInvalid (truncated: no footer) is a ValueError
        raise DamagedPart(part, exc) from None


class DamagedPart(GenrekitError):
    """A committed part that does not read (truncated, overwritten): its rows are lost."""

    def __init__(self, part: Path, exc: BaseException) -> None:
        self.part = part
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        self.reason = f"not a readable Parquet file ({first})"
        super().__init__(f"{part}: damaged part, {self.reason}")


@dataclass
class Plan:
    """What a run does with its inputs: ``todo`` to classify, ``skipped`` already in the folder,
    ``drop`` rows to remove first (part path -> row numbers) and how many of them."""

    todo: list[Task]
    skipped: int
    skipped_failed: int
    drop: dict[Path, set[int]] = field(default_factory=dict)

    @property
    def n_drop(self) -> int:
        return sum(len(v) for v in self.drop.values())


class DatasetDir:
    """An output folder of ``genrekit batch`` (created when missing)."""

    def __init__(self, root: str | os.PathLike[str], create: bool = True) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise GenrekitError(f"{self.root}: is a file, not a folder")
        if create:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise GenrekitError(f"{self.root}: cannot create the output folder ({exc.strerror or exc})") from None
        elif not self.root.is_dir():
            raise GenrekitError(f"{self.root}: no such folder")
        self._lock_fd: int | None = None
        #: parts found damaged by :meth:`read` or :meth:`plan` (a resumed run moved them aside)
        self.damaged: list[DamagedPart] = []

    # --------------------------------------------------------------------------------- locking

    def lock(self) -> None:
        """One writer per folder: a second ``genrekit batch`` on the same DIR stops at once
        instead of both skipping nothing and writing every row twice."""
        try:
            fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise GenrekitError(f"{self.root}: cannot write here ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise GenrekitError(f"{self.root}: another genrekit batch is writing to this folder") from None
        self._lock_fd = fd
        try:
            for tmp in self.root.glob(f".{PART_PREFIX}*"):  # temp files of a killed run: never committed
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            self.unlock()
            raise DatasetWriteError(self.root, exc) from None

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ---------------------------------------------------------------------------------- reading

    def parts(self) -> list[Path]:
        return sorted(self.root.glob(f"{PART_PREFIX}*.parquet"))

    def read(self, columns: list[str] | None = None) -> Any:
        """All committed rows as one pyarrow Table (empty with the schema when there are none)."""
        import pyarrow as pa

        tables = []
        for p in self.parts():
            try:
                tables.append(read_part(p, columns))
            except DamagedPart as bad:  # left out and named (``self.damaged``), never fatal
                self.damaged.append(bad)
        if not tables:
            s = schema()
            return s.empty_table() if columns is None else pa.schema([s.field(c) for c in columns]).empty_table()
        return pa.concat_tables(tables)

    def plan(self, tasks: Iterable[Task], model_hash: str, redo_failed: bool = False) -> Plan:
        """Split ``tasks`` into what to classify and what is already done (see the module doc)."""
        have: dict[str, list[tuple[int | None, float | None, str, Path, int]]] = {}
        for part in self.parts():
            try:
                t = read_part(part).to_pydict()  # every column: a part must read whole to count
            except DamagedPart as bad:
                self.set_aside(bad)
                continue
            for i, (inp, size, mtime, mh, err) in enumerate(zip(t["input"], t["size"], t["mtime"],
                                                               t["model_hash"], t["error"], strict=True)):
                if mh == model_hash:
                    have.setdefault(inp, []).append((size, mtime, err or "", part, i))
        todo: list[Task] = []
        skipped = skipped_failed = 0
        drop: dict[Path, set[int]] = {}
        for task in tasks:
            rows = have.get(task.input, [])
            same = [r for r in rows if (r[0], r[1]) == (task.size, task.mtime)]
            ok = [r for r in same if not r[2]]
            stale = [r for r in rows if r not in ok]
            if ok:
                skipped += 1
                stale = [r for r in rows if (r[0], r[1]) != (task.size, task.mtime)]
            elif same and not redo_failed:
                skipped += 1
                skipped_failed += 1
                stale = [r for r in rows if (r[0], r[1]) != (task.size, task.mtime)]
            else:
                todo.append(task)
            for r in stale:
                drop.setdefault(r[3], set()).add(r[4])
        return Plan(todo, skipped, skipped_failed, drop)

    def drop_rows(self, drop: dict[Path, set[int]]) -> None:
        """Remove rows from their parts (each part rewritten atomically; an emptied part deleted)."""
        import numpy as np

        for part, idx in drop.items():
            t = read_part(part)
            keep = np.ones(t.num_rows, dtype=bool)
            keep[list(idx)] = False
            if keep.any():
                write_table_atomic(t.filter(keep), part)
            else:
                try:
                    part.unlink()
                except OSError as exc:
                    raise DatasetWriteError(self.root, exc) from None
                fsync_dir(self.root)

    def set_aside(self, bad: DamagedPart) -> None:
        """Rename a damaged part to ``_damaged-<name>`` (kept, skipped by every reader of the
        folder) so its inputs, which now have no row, are classified again by this run."""
        dest = bad.part.with_name(DAMAGED_PREFIX + bad.part.name)
        try:
            os.replace(bad.part, dest)
        except OSError as exc:
            raise DatasetWriteError(self.root, exc) from None
        fsync_dir(self.root)
        self.damaged.append(bad)

    # ------------------------------------------------------------------------------- run record

    def read_runs(self) -> list[dict[str, Any]]:
        try:
            return list(json.loads((self.root / RUN_FILE).read_text(encoding="utf-8")).get("runs", []))
        except (OSError, ValueError, AttributeError):
            return []

    def write_run(self, run: dict[str, Any]) -> None:
        """Record this run in ``_genrekit_run.json`` (earlier runs kept; this one replaced by id)."""
        runs = [r for r in self.read_runs() if r.get("id") != run.get("id")]
        try:
            write_json_atomic(self.root / RUN_FILE, {"runs": runs + [run]})
        except OSError as exc:
            raise DatasetWriteError(self.root, exc) from None


def new_run_id() -> str:
    """Sortable and unique: UTC time plus random hex (two machines may write parts at once)."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


class PartWriter:
    """Buffers rows and commits them as Parquet parts (see the module doc)."""

    def __init__(self, root: Path, run_id: str, rows_per_part: int = 256, seconds_per_part: float = 10.0) -> None:
        self.root, self.run_id = Path(root), run_id
        self.rows_per_part, self.seconds_per_part = max(1, rows_per_part), seconds_per_part
        self.buf: list[dict[str, Any]] = []
        self.first_at = 0.0
        self.n_parts = 0
        self.n_rows = 0
        self.failed = False

    def add(self, row: dict[str, Any]) -> None:
        if not self.buf:
            self.first_at = time.monotonic()
        self.buf.append(row)
        self.tick()

    def tick(self) -> None:
        """Commit when the part is full or old enough (called between rows too)."""
        if self.buf and (len(self.buf) >= self.rows_per_part
                         or time.monotonic() - self.first_at >= self.seconds_per_part):
            self.flush()

    def flush(self) -> None:
        """Commit the buffered rows as one part. After a failed write (:class:`DatasetWriteError`)
        the writer is spent: later calls write nothing, so the run's clean-up cannot fail twice or
        leave a part made of whatever fitted on a full disk."""
        if not self.buf or self.failed:
            return
        import pyarrow as pa

        table = pa.Table.from_pylist(self.buf, schema=schema())
        try:
            write_table_atomic(table, self.root / f"{PART_PREFIX}{self.run_id}-{self.n_parts + 1:05d}.parquet")
        except DatasetWriteError:
            self.failed = True
            raise
        self.n_parts += 1
        self.n_rows += len(self.buf)
        self.buf = []
