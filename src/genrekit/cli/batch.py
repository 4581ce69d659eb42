"""``genrekit batch``: classify a whole library into a resumable Parquet dataset.

    genrekit batch SOURCES... --out DIR [--engine local|ray] [--workers N] [--redo-failed]
    genrekit batch --report DIR

The driver (this process) expands the sources, reads the resume index of DIR, hands the remaining
inputs to an engine (:mod:`genrekit.batch.engines`) and commits the rows it gets back in Parquet
parts. It never imports torch itself: only workers load the model. Ctrl-C or SIGTERM commits the
rows already done before exiting; a SIGKILL loses only the part being filled, and running the
same command again goes on where it stopped.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from genrekit.cli.argtypes import (
    add_tags_option,
    duration,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from genrekit.errors import GenrekitError, printable


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "batch",
        help="classify a whole library into a resumable Parquet dataset (this machine or a Ray cluster)",
        description="Classify files, folders (recursive), @list.txt files (one path or URL a line) and "
        "CSV/Parquet tables with a path column into DIR, a Parquet dataset with one row per input. "
        "Running the same command again skips what DIR already holds (same path, size, mtime and model).",
    )
    p.add_argument("sources", nargs="*", metavar="SOURCE",
                   help="audio file, folder, http(s) URL, @list.txt, or a .csv/.parquet with a path column")
    p.add_argument("--out", type=Path, metavar="DIR", help="the dataset folder (created; resumed when it exists)")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="print the genre counts of a batch folder and write a bar chart PNG, then exit")
    p.add_argument("--png", type=Path, metavar="PATH", help="where --report writes its chart (default DIR/_genres.png)")
    p.add_argument("--model", default=None, metavar="PATH|default",
                   help="model file or folder from `genrekit train`, or a built-in: 'default' (mn04, the default) or 'musicnn'")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: worker processes on this machine (default); ray: Ray Data actors "
                   "(pip install 'genrekit[ray]')")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help=f"worker processes (local) or actors (ray); default: this machine's CPUs ({_cpus()})")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="math threads per worker (default: CPUs / workers, at least 1; ray: 1)")
    p.add_argument("--ray-address", default=None, metavar="HOST:PORT|auto",
                   help="join this Ray cluster (its nodes must see the inputs at the same paths); "
                   "default: start a local Ray for the run")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="ray: give each actor a GPU (cuda) or not (cpu, the default)")
    p.add_argument("--redo-failed", action="store_true", help="retry inputs whose row in DIR has an error")
    p.add_argument("--segments", action="store_true", help="also store each segment's genre and scores")
    p.add_argument("--top-tags", type=non_negative_int, default=3, metavar="K",
                   help="store the K most probable tags for models that have them (default 3; 0: none)")
    add_tags_option(p)
    p.add_argument("--max-duration", type=duration(allow_zero=True), default="3h", metavar="DURATION",
                   help="refuse URLs whose audio is longer than this: seconds, or with a unit (90s, 20m, 3h) "
                   "(default 3h; 0: no limit). Changed: a bare number used to mean minutes")
    p.add_argument("--max-size", type=non_negative_float, default=200.0, metavar="MB",
                   help="refuse URL downloads larger than MB megabytes (default 200; 0: no limit)")
    p.add_argument("--timeout", type=duration(), default="30s", metavar="DURATION",
                   help="network timeout for URLs: each connect and read (default 30s)")
    p.add_argument("--part-rows", type=positive_int, default=256, metavar="N",
                   help="commit a Parquet part every N rows (default 256) ...")
    p.add_argument("--part-seconds", type=duration(), default="10s", metavar="DURATION",
                   help="... or this often, whichever comes first (default 10s): what a SIGKILL can lose")
    p.add_argument("--quiet", action="store_true", help="no progress line and no summary")
    p.add_argument("--block-seconds", type=positive_float, default=300.0, metavar="S", help=argparse.SUPPRESS)
    p.set_defaults(func=run)
    return p


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # same path as Ctrl-C: commit what is done, then stop


def run(args: argparse.Namespace) -> int:
    if args.report is not None:
        if args.sources or args.out is not None:
            raise GenrekitError("--report DIR takes no SOURCES and no --out")
        from genrekit.batch.report import report

        text, _, damaged = report(args.report, args.png)
        print(text)
        for bad in damaged:  # rows lost with it: a resumed run classifies those inputs again
            print(f"genrekit: error: {printable(str(bad))}; left out of this report "
                  "(run the same batch command again to redo its inputs)", file=sys.stderr)
        return 1 if damaged else 0
    if not args.sources:
        raise GenrekitError("batch: name at least one SOURCE (file, folder, URL, @list.txt, .csv or .parquet)")
    if args.out is None:
        raise GenrekitError("batch: --out DIR is required (the dataset folder)")
    if args.ray_address and args.engine != "ray":
        raise GenrekitError("--ray-address is for --engine ray")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise GenrekitError("batch needs pyarrow (a genrekit dependency): pip install pyarrow") from None

    from genrekit.batch.engines import make_engine
    from genrekit.batch.progress import Progress
    from genrekit.batch.rows import WorkerSpec, error_row, model_hash
    from genrekit.batch.sources import expand_sources
    from genrekit.batch.writer import DatasetDir, DatasetWriteError, PartWriter, new_run_id

    workers = args.workers or _cpus()
    engine = make_engine(args.engine, workers, args.ray_address, args.device)  # Ray missing: one line, now
    threads = args.threads or (max(1, _cpus() // workers) if args.engine == "local" else 1)
    from genrekit.models.base import BUILTIN_MODELS

    model_ref = (None if args.model in (None, "default") else args.model if args.model in BUILTIN_MODELS
                 else str(Path(args.model).expanduser().resolve()))
    spec = WorkerSpec(
        model=model_ref, model_name=model_ref or "default", model_hash=model_hash(model_ref),
        top_tags=args.top_tags, tags=args.tags, block_seconds=args.block_seconds,
        max_bytes=int(args.max_size * 1e6) if args.max_size else None,
        max_duration_s=args.max_duration or None,
        timeout_s=args.timeout, segments=args.segments, threads=threads, device=args.device,
    )
    tasks = expand_sources(args.sources)
    ds = DatasetDir(args.out)
    ds.lock()
    old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    run_id = new_run_id()
    record = {
        "id": run_id, "command": "genrekit batch", "model": spec.model_name, "model_hash": spec.model_hash,
        "settings": {"engine": args.engine, "workers": workers, "threads": threads, "ray_address": args.ray_address,
                     "device": args.device, "segments": args.segments, "top_tags": args.top_tags, "tags": args.tags,
                     "redo_failed": args.redo_failed, "part_rows": args.part_rows, "part_seconds": args.part_seconds,
                     "sources": [str(s) for s in args.sources]},
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "ended": None, "status": "running",
    }
    writer = PartWriter(ds.root, run_id, args.part_rows, args.part_seconds)
    progress = None
    status = "interrupted"
    t0 = time.perf_counter()
    write_error: DatasetWriteError | None = None
    rows: Iterator[dict[str, Any] | None] = iter(())
    try:
        plan = ds.plan(tasks, spec.model_hash, args.redo_failed)
        for bad in ds.damaged:  # moved aside by plan(): its inputs have no row now, so they are redone
            print(f"genrekit: {printable(str(bad))}; moved aside to _damaged-{printable(bad.part.name)}, "
                  "its inputs are classified again", file=sys.stderr)
        if plan.drop:
            ds.drop_rows(plan.drop)
        record["counts"] = {"inputs": len(tasks), "skipped": plan.skipped, "todo": len(plan.todo),
                            "replaced": plan.n_drop, "done": 0, "failed": 0}
        ds.write_run(record)
        progress = Progress(len(plan.todo), plan.skipped, enabled=not args.quiet)
        progress.show(force=True)
        good = [t for t in plan.todo if not t.error]
        for t in plan.todo:
            if t.error:  # nothing for a worker to do: the row says why
                writer.add(error_row(t, spec.model_name, spec.model_hash, t.error))
                progress.row(failed=True)
        rows = engine.rows(spec, good) if good else iter(())
        for row in rows:  # closed in `finally`: workers stop before any error line is printed
            if row is None:
                writer.tick()
                progress.show()
                continue
            writer.add(row)
            progress.row(failed=bool(row["error"]))
        writer.flush()
        status = "finished"
    except DatasetWriteError as exc:  # read-only folder, full disk: one line, no traceback
        status = "failed"
        write_error = exc
    except GenrekitError:
        status = "failed"
        raise
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()  # the engine's own clean-up: workers told to stop, joined, killed if need be
        if write_error is None:
            try:
                writer.flush()  # Ctrl-C / SIGTERM / an engine error: commit the rows already done
            except DatasetWriteError as exc:
                write_error, status = exc, "failed"
        signal.signal(signal.SIGTERM, old_term)
        elapsed = time.perf_counter() - t0
        if progress is not None:
            progress.close()
            record["counts"].update(done=progress.done, failed=progress.failed)
            record["tracks_per_min"] = round(progress.rate_per_min(), 1)  # from the first row on
            if progress.first_row_at is not None:
                record["first_row_s"] = round(progress.first_row_at - progress.t0, 3)
        record.update(status=status, ended=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      seconds=round(elapsed, 2), engine_stats={k: (round(v, 3) if isinstance(v, float) else v)
                                                               for k, v in engine.stats.items()})
        try:
            if write_error is None or not writer.failed:  # the disk said no: nothing more is written
                ds.write_run(record)
        except DatasetWriteError as exc:
            write_error = write_error or exc
        finally:
            ds.unlock()
    if write_error is not None:
        raise write_error
    if not args.quiet:
        c = record["counts"]
        startup = engine.stats.get("startup_s")
        print(f"batch: {c['done'] - c['failed']} classified, {c['skipped']} skipped, {c['failed']} failed "
              f"in {elapsed:.1f} s ({record['tracks_per_min']:.0f} tracks/min"
              + (f", start-up {startup:.1f} s" if startup is not None else "") + f") -> {ds.root}",
              file=sys.stderr)
    return 1 if progress is not None and progress.failed else 0
