"""``genrekit tag``: write the predicted genre into each file's own genre field, and undo it.

Per file, one line on stdout: ``tagged``, ``would tag`` (``--dry-run``), ``unchanged`` or
``skipped`` with the old and new values; failures are one ``genrekit: error:`` line on stderr and
the other files go on (exit 1 when any failed). Files are read before anything is analysed, so
formats genrekit cannot write, files it tagged before (without ``--force``) and, with ``--mode
fill``, files that have a genre cost no model time.

Every run that changes a file writes an undo log first (see ``genrekit.library.undo``);
``genrekit tag --undo LOG`` puts the old values back, file by file, unless a file's genre changed
again since (``--force`` restores anyway).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from genrekit.cli.argtypes import float_in
from genrekit.errors import GenrekitError, one_line

confidence_type = float_in(0.0, 1.0, hi_open=False)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "tag",
        help="write the predicted genre into audio files' genre tags",
        description="Write the predicted genre into each file's own genre field (MP3 ID3v2.3/2.4, FLAC, "
        "Ogg Vorbis, Opus, M4A/MP4, WAV, AIFF). Files are replaced atomically by an edited copy that "
        "keeps owner, mode and mtime; every run writes an undo log.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="audio file or folder (searched recursively)")
    add_answer_options(p)
    p.add_argument("--mode", choices=("replace", "add", "fill"), default="replace",
                   help="replace the genre (default), add it to the file's genres, or fill only files without one")
    p.add_argument("--force", action="store_true",
                   help="also retag files genrekit tagged before (with --undo: restore even files changed since)")
    p.add_argument("--dry-run", action="store_true", help="print old and new values per file; write nothing")
    p.add_argument("--undo-log", type=Path, default=None, metavar="PATH",
                   help="where to write this run's undo log (default: a new file under ~/.local/state/genrekit/undo)")
    p.add_argument("--undo", type=Path, default=None, metavar="LOG", help="put back the genres a tag run's LOG recorded")
    p.set_defaults(func=run)
    return p


def add_answer_options(p: argparse.ArgumentParser) -> None:
    """Options ``tag`` and ``sort`` share: where answers come from and which are good enough."""
    p.add_argument("--from", dest="results", type=Path, default=None, metavar="RESULTS_DIR",
                   help="reuse a `genrekit batch` result; files changed since (size/mtime) or failed there are analysed again")
    p.add_argument("--model", default=None, metavar="PATH|default", help="model for files analysed now (default: default)")
    p.add_argument("--min-confidence", type=confidence_type, default=0.0, metavar="X",
                   help="leave files whose answer's confidence is below X alone (0..1, default 0)")
    p.add_argument("--include-other", action="store_true",
                   help="also act on 'other' answers (music outside the model's genres); by default they are left alone")
    p.add_argument("--names", choices=("display", "plain"), default="display",
                   help="genre names as players show them ('Hip-Hop', default) or the model's labels ('hiphop')")
    p.add_argument("--names-file", type=Path, default=None, metavar="FILE",
                   help="your own names: JSON {\"hiphop\": \"Hip Hop\"} or 'label = name' lines; overrides --names")


def show(genres: tuple[str, ...] | list[str]) -> str:
    return "; ".join(genres) if genres else "(none)"


class Reporter:
    """Per-file lines on stdout, errors on stderr, counts for the summary line."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def line(self, status: str, path: str, text: str = "") -> None:
        from genrekit.prediction import printable

        self.counts[status] = self.counts.get(status, 0) + 1
        print(printable(f"{status:<10} {path}" + (f"  {text}" if text else "")), flush=True)

    def error(self, msg: str) -> None:
        from genrekit.prediction import printable

        self.counts["failed"] = self.counts.get("failed", 0) + 1
        print(printable(f"genrekit: error: {msg}"), file=sys.stderr, flush=True)

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)

    def summary(self, extra: str = "") -> None:
        parts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        print(f"genrekit: {parts or 'nothing to do'}{extra}", file=sys.stderr, flush=True)


def local_files(inputs: list[str], rep: Reporter) -> list[str]:
    """Files of INPUTs (folders expanded as predict does); URLs and missing paths are errors."""
    from genrekit.cli.predict import expand_inputs
    from genrekit.urls import is_url

    files = []
    seen: set[str] = set()
    for src, problem in expand_inputs(inputs):
        if problem is not None:
            rep.error(f"{src}: {problem}")
        elif is_url(src):
            rep.error(f"{src}: cannot tag a URL; download the file first")
        elif not os.path.isfile(src):
            rep.error(f"{src}: {'not a file' if os.path.exists(src) else 'no such file'}")
        elif os.path.realpath(src) not in seen:  # a file named twice (or by a folder and by name) is done once
            seen.add(os.path.realpath(src))
            files.append(src)
    return files


def run(args: argparse.Namespace) -> int:
    if args.undo is not None:
        if args.inputs:
            raise GenrekitError("--undo LOG takes no INPUTs (the log names the files)")
        return run_undo(args.undo, dry_run=args.dry_run, force=args.force)
    if not args.inputs:
        raise GenrekitError("tag needs at least one INPUT (or --undo LOG)")

    from genrekit.library.answers import Rules, decide, iter_answers, lazy_classifier
    from genrekit.library.names import GenreNames
    from genrekit.library.tagging import (
        CannotTag,
        GenreState,
        TagError,
        check_taggable,
        check_writable,
        make_marker,
        new_genres,
        parse_marker,
        read_state,
        write_state,
    )
    from genrekit.library.undo import UndoLog, default_log_path

    names = GenreNames.from_options(args.names, args.names_file)
    rules = Rules(args.min_confidence, args.include_other)
    if args.undo_log is not None and os.path.lexists(args.undo_log) and not args.dry_run:
        raise GenrekitError(f"{args.undo_log}: undo log exists already; genrekit never overwrites one")
    rep = Reporter()
    todo: list[tuple[str, GenreState]] = []
    for path in local_files(args.inputs, rep):
        try:
            old = read_state(path)
            check_taggable(path)  # a streaming WAV, an ID3 tag genrekit cannot edit frame by frame
        except CannotTag as exc:
            rep.line("skipped", path, exc.reason)
            continue
        except TagError as exc:
            rep.error(str(exc))
            continue
        if old.marker is not None and not args.force:
            rep.line("skipped", path, f"tagged by genrekit before ({show(old.genres)}; --force retags)")
            continue
        if args.mode == "fill" and any(g.strip() for g in old.genres) and old.marker is None:
            rep.line("skipped", path, f"has a genre ({show(old.genres)}; --mode fill)")
            continue
        todo.append((path, old))

    log = None if args.dry_run else UndoLog(args.undo_log or default_log_path("tag"), "tag")
    try:
        olds = dict(todo)
        for path, result in iter_answers([p for p, _ in todo], lazy_classifier(args.model), args.results):
            if isinstance(result, GenrekitError):
                rep.error(str(result))
                continue
            old = olds[path]
            why = decide(result, rules)
            if why is not None:
                rep.line("skipped", path, why)
                continue
            name = names.name(result.genre)
            ours = parse_marker(old.marker).get("written") if old.marker else None
            genres = new_genres(old.genres, name, args.mode, ours)
            if genres is None:
                rep.line("skipped", path, f"has a genre ({show(old.genres)}; --mode fill)")
                continue
            new = GenreState(genres, make_marker(result.genre, result.confidence, result.model, name))
            said = f"{show(old.genres)} -> {show(new.genres)}  ({result.genre} {result.confidence:.2f})"
            if args.dry_run:
                rep.line("would tag" if new.genres != old.genres else "unchanged", path, said)
                continue
            try:
                check_writable(path)
                entry = {"path": os.path.realpath(path), "input": path, "old": old.to_dict(), "new": new.to_dict()}
                # the log line (with what gives the original bytes back) is fsynced after the edited
                # copy is complete and before it replaces the file: a log that cannot be written
                # (a full disk) stops the run with the file untouched
                write_state(path, new, expect=old, journal=lambda info, entry=entry: log.record({**entry, "bytes": info}))
            except TagError as exc:
                rep.error(str(exc))
                continue
            except (KeyboardInterrupt, MemoryError):
                raise
            except GenrekitError:
                raise  # the undo log cannot be written: stop before changing anything else
            except Exception as exc:  # a bug must not stop the other files, nor print a traceback
                if os.environ.get("GENREKIT_DEBUG"):
                    raise
                rep.error(f"{path}: unexpected {one_line(exc)}")
                continue
            rep.line("tagged" if new.genres != old.genres else "marked", path, said)
    finally:
        if log is not None:
            log.close()
    extra = f"; undo log: {log.path} (genrekit tag --undo {log.path})" if log is not None and log.entries else ""
    rep.summary(extra)
    return 1 if rep.failed else 0


def run_undo(path: Path, *, dry_run: bool, force: bool) -> int:
    """Put back the old genre values (and marker) of every file a tag run's log recorded."""
    from genrekit.library.tagging import (
        GenreState,
        TagError,
        read_state,
        restore_bytes,
        same_genres,
        write_state,
    )
    from genrekit.library.undo import read_log

    rep = Reporter()
    entries = list(read_log(path, "tag"))
    for entry in reversed(entries):  # newest first, so a file tagged twice in one log ends at its first old value
        target = str(entry.get("path", ""))
        try:
            old, new = GenreState.from_dict(entry["old"]), GenreState.from_dict(entry["new"])
            now = read_state(target)
            if now.marker == old.marker and same_genres(now.genres, old.genres):
                rep.line("unchanged", target, f"already {show(old.genres)}")
                continue
            if (now.marker != new.marker or not same_genres(now.genres, new.genres)) and not force:
                rep.error(f"{target}: its genre changed since this log ({show(now.genres)}, logged {show(new.genres)}); "
                          "left as it is (--force restores anyway)")
                continue
            if dry_run:
                rep.line("would undo", target, f"{show(now.genres)} -> {show(old.genres)}")
                continue
            if isinstance(entry.get("bytes"), dict) and restore_bytes(target, entry["bytes"]):
                rep.line("restored", target, f"{show(now.genres)} -> {show(old.genres)}  (the original bytes)")
                continue
            # changed since genrekit wrote it (or an old log): put the genre values back, keeping the rest
            write_state(target, old, expect=None if force else new)
            rep.line("restored", target, f"{show(now.genres)} -> {show(old.genres)}")
        except TagError as exc:
            rep.error(str(exc))
        except (KeyError, TypeError, AttributeError):
            rep.error(f"{path}: a malformed entry for {target or '?'}")
    rep.summary()
    return 1 if rep.failed else 0
