"""``genrekit predict``: the genre of files, folders and URLs, as a table, JSON lines or CSV.

The model is loaded once for the whole batch. A bad input prints one line on stderr
(``genrekit: error: <input>: <reason>``) and the batch goes on; the exit code is 1 when any input
failed. Rows are printed as soon as each input is done, so long batches show progress on stdout
too; the tqdm bar goes to stderr and only when stderr is a terminal (or with ``--progress``).

``jsonl`` and ``csv`` keep one record per input: a failed input gets ``{"input", "error"}`` (jsonl)
or a row with empty prediction fields and the ``error`` column filled (csv), so a script reading
stdout can tell which inputs failed without parsing stderr. The table leaves failures to stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from ..errors import GenrekitError, one_line
from .argtypes import non_negative_float, non_negative_int, positive_float

FORMATS = ("table", "jsonl", "csv")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict",
        help="tell the genre of audio files, folders or URLs",
        description="Tell the genre of audio files, folders (searched recursively) or http(s) URLs "
        "(anything yt-dlp can fetch). Uses the pretrained default model unless --model is given.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio file, folder or http(s) URL")
    p.add_argument("--model", default=None, metavar="PATH|default",
                   help="model file or folder from `genrekit train`, or 'default' (the default)")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("--segments", action="store_true",
                   help="also show each segment's genre (table: indented lines; csv: one row per segment, "
                   "with the track's genre in track_genre); jsonl records always hold the segments")
    p.add_argument("--timeline", metavar="DIR", type=Path, default=None,
                   help="write a timeline PNG per input into DIR")
    p.add_argument("--top-tags", type=non_negative_int, default=3, metavar="K",
                   help="report the K most probable tags for models that have them (default 3; 0: none)")
    p.add_argument("--max-duration", type=non_negative_float, default=180.0, metavar="MIN",
                   help="refuse URLs whose audio is longer than MIN minutes (default 180; 0: no limit)")
    p.add_argument("--max-size", type=non_negative_float, default=200.0, metavar="MB",
                   help="refuse URL downloads larger than MB megabytes (default 200; 0: no limit)")
    p.add_argument("--timeout", type=positive_float, default=30.0, metavar="S",
                   help="network timeout for URLs: each connect and read (s, default 30)")
    p.add_argument("--download-timeout", type=non_negative_float, default=600.0, metavar="S",
                   help="longest a URL's whole download may take, however the server trickles "
                   "(s, default 600; 0: no limit)")
    p.add_argument("--block-seconds", type=positive_float, default=300.0, metavar="S", help=argparse.SUPPRESS)
    p.add_argument("--progress", action="store_true", help="show a progress bar even when stderr is not a terminal")
    p.add_argument("--no-progress", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run)
    return p


def expand_inputs(inputs: list[str]) -> Iterator[tuple[str, str | None]]:
    """(input, error) pairs: folders become their audio files (sorted, recursive, hidden names such
    as macOS ``._song.wav`` sidecars left out); URLs and files pass through, hidden or not, since
    the user named them (missing files fail later with their own message)."""
    from ..audio import audio_files_under
    from ..urls import is_url

    for raw in inputs:
        if is_url(raw):
            yield raw, None
            continue
        p = Path(raw)
        if p.is_dir():
            files = audio_files_under(p)
            if not files:
                yield raw, "folder holds no audio files"
            for f in files:
                yield str(f), None
        else:
            yield raw, None


def _top3(pred: Any) -> str:
    return ", ".join(f"{g} {p:.2f}" for g, p in pred.top(3))


def _fmt_duration(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _fmt_clock(s: float) -> str:
    """A segment boundary to a tenth of a second (segments ~0.98 s apart would print twice at
    whole seconds)."""
    tenths = int(round(s * 10))
    return f"{_fmt_duration(tenths // 10)}.{tenths % 10}"


class _Writer:
    """Writes one prediction (or one failed input's record) at a time in the chosen format."""

    def __init__(self, fmt: str, out: TextIO, labels: list[str], segments: bool, emit: Callable[[str], None]) -> None:
        self.fmt, self.out, self.labels, self.segments, self.emit = fmt, out, labels, segments, emit
        self.started = False
        self.input_width = 40
        self.n_csv_cols = 0  # columns before "error", set by header() for csv

    def header(self, inputs: list[str]) -> None:
        if self.fmt == "table":
            self.input_width = max(5, min(60, max((len(i) for i in inputs), default=5)))
            self.emit(f"{'input':<{self.input_width}}  {'genre':<12} {'conf':>5}  {'duration':>8}  top-3")
        elif self.fmt == "csv":
            if self.segments:  # segment rows carry the track's genre too: no second file needed for it
                cols = ["input", "track_genre", "start_s", "end_s", "genre", "confidence"]
            else:
                cols = ["input", "genre", "confidence", "duration_s"]
            cols += [f"p_{lab}" for lab in self.labels] + ([] if self.segments else ["tags", "model"])
            self.n_csv_cols = len(cols)
            self.emit(_csv_line(cols + ["error"]))

    def write(self, pred: Any) -> None:
        if self.fmt == "jsonl":
            self.emit(json.dumps(pred.to_dict(), ensure_ascii=False))
        elif self.fmt == "csv":
            if self.segments:
                for s in pred.segments:
                    self.emit(_csv_line([pred.input, pred.genre, f"{s.start_s:.3f}", f"{s.end_s:.3f}", s.genre,
                                         f"{s.confidence:.4f}"]
                                        + [f"{s.probabilities[lab]:.4f}" for lab in self.labels] + [""]))
            else:
                tags = ";".join(f"{t['tag']}:{t['probability']:.3f}" for t in pred.tags or [])
                self.emit(_csv_line([pred.input, pred.genre, f"{pred.confidence:.4f}", f"{pred.duration_s:.2f}"]
                                    + [f"{pred.probabilities[lab]:.4f}" for lab in self.labels]
                                    + [tags, pred.model, ""]))
        else:
            name = pred.input
            w = self.input_width
            if len(name) > w:
                name = "..." + name[-(w - 3):]
            line = f"{name:<{w}}  {pred.genre:<12} {pred.confidence:>5.2f}  {_fmt_duration(pred.duration_s):>8}  {_top3(pred)}"
            if pred.tags:
                line += "  | tags: " + ", ".join(t["tag"] for t in pred.tags)
            self.emit(line)
            if self.segments:
                for s in pred.segments:
                    self.emit(f"    {_fmt_clock(s.start_s):>9} - {_fmt_clock(s.end_s):>9}  {s.genre:<12} {s.confidence:.2f}")

    def write_error(self, src: str, reason: str) -> None:
        """The record of an input that failed, so jsonl/csv keep one record per input; the table
        shows only predictions (the stderr line is the failure's record there)."""
        if self.fmt == "jsonl":
            self.emit(json.dumps({"input": src, "error": reason}, ensure_ascii=False))
        elif self.fmt == "csv":
            self.emit(_csv_line([src] + [""] * (self.n_csv_cols - 1) + [reason]))


def _csv_line(values: list[Any]) -> str:
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(values)
    return buf.getvalue()


def _unique_png(directory: Path, name: str, used: set[str]) -> Path:
    from ..timeline import safe_stem

    stem = safe_stem(name)
    cand, i = stem, 2
    while cand in used:
        cand, i = f"{stem}-{i}", i + 1
    used.add(cand)
    return directory / f"{cand}.png"


def _reason(exc: GenrekitError, src: str) -> str:
    """The reason of an error about ``src``, without the ``<input>: `` prefix of its message."""
    msg = str(exc)
    return msg[len(src) + 2:] if msg.startswith(f"{src}: ") else msg


def _prepare_timeline_dir(directory: Path) -> None:
    """Make the ``--timeline`` folder before any input is read: a folder that cannot hold the PNGs
    is one error for the whole command, not one per input after minutes of work."""
    if directory.exists() and not directory.is_dir():
        raise GenrekitError(f"{directory}: cannot write timelines here: it is a file, not a folder")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenrekitError(f"{directory}: cannot create the timeline folder ({exc.strerror or exc})") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise GenrekitError(f"{directory}: cannot write timelines here (permission denied)")


def _write_timeline(pred: Any, src: str, directory: Path, used: set[str]) -> Path:
    """The timeline PNG of one input; any failure becomes a GenrekitError about that input alone."""
    from ..timeline import plot_timeline

    try:
        return plot_timeline(pred, _unique_png(directory, src, used))
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:
        if os.environ.get("GENREKIT_DEBUG"):
            raise
        raise GenrekitError(f"{src}: cannot write timeline ({one_line(exc)})") from None


def run(args: argparse.Namespace) -> int:
    from ..audio import quiet_native_stderr
    from ..prediction import Classifier, printable

    classifier = Classifier.load(
        args.model,
        top_tags=args.top_tags,  # argparse: >= 0; the caps below: >= 0, 0 meaning none
        max_bytes=int(args.max_size * 1e6) if args.max_size else None,
        max_duration_s=args.max_duration * 60 if args.max_duration else None,
        timeout_s=args.timeout,
        download_timeout_s=args.download_timeout or None,
        block_seconds=args.block_seconds,
    )
    if args.timeline is not None:
        _prepare_timeline_dir(args.timeline)
    items = list(expand_inputs(args.inputs))
    show_bar = (args.progress or sys.stderr.isatty()) and not args.no_progress and len(items) > 0
    bar = None
    if show_bar:
        from tqdm import tqdm

        bar = tqdm(total=len(items), unit="input", file=sys.stderr, dynamic_ncols=True, leave=False)

    def say(line: str, stream: TextIO) -> None:
        """One line on ``stream``, above the progress bar when there is one."""
        def write(text: str) -> None:
            bar.write(text, file=stream) if bar is not None else print(text, file=stream, flush=True)

        try:
            write(line)
        except UnicodeEncodeError:  # a file name that is not UTF-8, on a strict stream: show it with U+FFFD
            write(printable(line))

    def emit(line: str) -> None:
        say(line, sys.stdout)

    def error(line: str) -> None:
        say(line, sys.stderr)

    writer = _Writer(args.format, sys.stdout, classifier.labels, args.segments, emit)
    writer.header([i for i, _ in items])
    failed = 0
    used: set[str] = set()
    try:
        for src, problem in items:
            if bar is not None:
                bar.set_postfix_str(os.path.basename(src.rstrip("/"))[:30], refresh=False)
            try:
                if problem is not None:
                    raise GenrekitError(f"{src}: {problem}")
                with quiet_native_stderr():
                    pred = classifier.predict(src)
                # the PNG is written before the record, so an input whose timeline fails is reported
                # once, as failed, instead of as a prediction followed by an error
                png = _write_timeline(pred, src, args.timeline, used) if args.timeline is not None else None
            except GenrekitError as exc:
                failed += 1
                error(f"genrekit: error: {exc}")
                writer.write_error(src, _reason(exc, src))
            except (KeyboardInterrupt, MemoryError):
                raise
            except Exception as exc:  # a bug should not kill a long batch, nor print a traceback
                if os.environ.get("GENREKIT_DEBUG"):
                    raise
                failed += 1
                reason = f"unexpected {one_line(exc)}"
                error(f"genrekit: error: {src}: {reason}")
                writer.write_error(src, reason)
            else:
                writer.write(pred)
                if png is not None and args.format == "table":
                    emit(f"    timeline: {png}")
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if failed and len(items) > 1:
        error(f"genrekit: {failed} of {len(items)} inputs failed")
    return 1 if failed else 0
