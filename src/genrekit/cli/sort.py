"""``genrekit sort``: copy, move or link files into genre folders, and undo it.

Per file one line on stdout (``copied``/``moved``/``linked``, ``would ...`` with ``--dry-run``,
or ``skipped`` with the reason); failures are one ``genrekit: error:`` line and the rest go on.
Names are never overwritten ("song.mp3" -> "song-2.mp3"), and each run journals what it did so
``genrekit sort --undo JOURNAL`` reverses it (see ``genrekit.library.sorting``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from genrekit.cli.tag import Reporter, add_answer_options, local_files
from genrekit.errors import GenrekitError, one_line

PAST = {"copy": "copied", "move": "moved", "link": "linked"}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from genrekit.library.sorting import DEFAULT_PATTERN, FIELDS

    p = subparsers.add_parser(
        "sort",
        help="copy, move or link audio files into genre folders",
        description="Copy (default), move or link audio files into folders by predicted genre. Never overwrites "
        "a file; every run writes a journal that --undo reverses.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="audio file or folder (searched recursively)")
    p.add_argument("--into", type=Path, default=None, metavar="DIR", help="where the genre folders go")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--copy", dest="action", action="store_const", const="copy", help="copy the files (default)")
    how.add_argument("--move", dest="action", action="store_const", const="move",
                     help="move the files (across filesystems: copy, fsync, then delete the source)")
    how.add_argument("--link", dest="action", action="store_const", const="link", help="make symbolic links to the files")
    p.add_argument("--pattern", default=DEFAULT_PATTERN, metavar="PATTERN",
                   help=f"destination under DIR (default {DEFAULT_PATTERN!r}; fields: {', '.join('{' + f + '}' for f in FIELDS)})")
    add_answer_options(p)
    p.add_argument("--dry-run", action="store_true", help="print where each file would go; change nothing")
    p.add_argument("--journal", type=Path, default=None, metavar="PATH",
                   help="where to write this run's journal (default: a new file under ~/.local/state/genrekit/undo)")
    p.add_argument("--undo", type=Path, default=None, metavar="JOURNAL", help="reverse the sort run that wrote JOURNAL")
    p.add_argument("--force", action="store_true", help="with --undo: also undo files changed since")
    p.set_defaults(func=run, action=None)
    return p


def run(args: argparse.Namespace) -> int:
    if args.undo is not None:
        if args.inputs or args.into:
            raise GenrekitError("--undo JOURNAL takes no INPUTs or --into (the journal names the files)")
        return run_undo(args.undo, dry_run=args.dry_run, force=args.force)
    if not args.inputs or args.into is None:
        raise GenrekitError("sort needs INPUTs and --into DIR (or --undo JOURNAL)")

    from genrekit.library.answers import Rules, decide, iter_answers, lazy_classifier
    from genrekit.library.names import GenreNames
    from genrekit.library.sorting import SortError, check_pattern, free_name, place, render
    from genrekit.library.undo import UndoLog, default_log_path

    check_pattern(args.pattern)
    action = args.action or "copy"
    names = GenreNames.from_options(args.names, args.names_file)
    rules = Rules(args.min_confidence, args.include_other)
    if args.journal is not None and os.path.lexists(args.journal) and not args.dry_run:
        raise GenrekitError(f"{args.journal}: journal exists already; genrekit never overwrites one")
    into = args.into.expanduser()
    if into.exists() and not into.is_dir():
        raise GenrekitError(f"{into}: --into must be a folder, and this is a file")
    into_abs = os.path.realpath(into)
    rep = Reporter()
    files = []
    for path in local_files(args.inputs, rep):
        if os.path.realpath(path).startswith(into_abs.rstrip(os.sep) + os.sep):
            rep.line("skipped", path, "already inside --into")
        else:
            files.append(path)
    log = None if args.dry_run else UndoLog(args.journal or default_log_path("sort"), "sort")
    try:
        for path, result in iter_answers(files, lazy_classifier(args.model), args.results):
            if isinstance(result, GenrekitError):
                rep.error(str(result))
                continue
            why = decide(result, rules)
            if why is not None:
                rep.line("skipped", path, why)
                continue
            try:
                dest = into / render(args.pattern, path, names.name(result.genre), result.genre, result.confidence,
                                     result.nearest)
            except SortError as exc:
                rep.error(f"{path}: {exc}")
                continue
            said = f"({result.genre} {result.confidence:.2f})"
            if args.dry_run:
                rep.line(f"would {action}", path, f"-> {free_name(dest)}  {said}")
                continue
            try:
                final = place(path, dest, action, log)
            except SortError as exc:
                rep.error(str(exc))
                continue
            except (KeyboardInterrupt, MemoryError):
                raise
            except GenrekitError:
                raise  # the journal cannot be written: stop before anything else changes
            except Exception as exc:
                if os.environ.get("GENREKIT_DEBUG"):
                    raise
                rep.error(f"{path}: unexpected {one_line(exc)}")
                continue
            rep.line(PAST[action], path, f"-> {final}  {said}")
    finally:
        if log is not None:
            log.close()
    extra = f"; journal: {log.path} (genrekit sort --undo {log.path})" if log is not None and log.entries else ""
    rep.summary(extra)
    return 1 if rep.failed else 0


def run_undo(path: Path, *, dry_run: bool, force: bool) -> int:
    from genrekit.library.sorting import SortError, undo_entry
    from genrekit.library.undo import read_log

    rep = Reporter()
    for entry in reversed(list(read_log(path, "sort"))):
        try:
            if dry_run:
                rep.line("would undo", str(entry["dest"]), f"{entry['op']} of {entry['src']}")
                continue
            status, what = undo_entry(entry, force=force)
            rep.line(status, str(entry["dest"]), what)
        except SortError as exc:
            rep.error(str(exc))
        except (KeyError, TypeError):
            rep.error(f"{path}: a malformed entry")
    rep.summary()
    return 1 if rep.failed else 0
