"""``genrekit predict``: the genre of files, folders and URLs, as a table, JSON, JSON lines or CSV.

The model is loaded once for the whole batch. A bad input prints one line on stderr
(``genrekit: error: <input>: <reason>``) and the batch goes on; the exit code is 1 when any input
failed. Rows are printed as soon as each input is done, so long batches show progress on stdout
too; the tqdm bars go to stderr and only when stderr is a terminal (or with ``--progress``): one
over the inputs and, for an input longer than one block (5 minutes), one over its seconds.
``-`` as an input reads more inputs from stdin, one per line (``find ... | genrekit predict -``).

``json``, ``jsonl`` and ``csv`` keep one record per input: a failed input gets ``{"input", "error"}``
(json/jsonl) or a row with empty prediction fields and the ``error`` column filled (csv), so a
script reading stdout can tell which inputs failed without parsing stderr. The table leaves
failures to stderr. Records carry the segments only with ``--segments`` (a 2-hour file has
thousands), and a ``timeline`` field (csv: column) naming the PNG when ``--timeline`` is given.
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

from genrekit.cli.argtypes import (
    add_tags_option,
    duration,
    non_negative_float,
    non_negative_int,
    positive_float,
)
from genrekit.errors import GenrekitError, one_line, printable
from genrekit.units import format_clock, format_duration, format_percent

FORMATS = ("table", "json", "jsonl", "csv")
STDIN = "-"
#: The widest input name the table shows whole; longer ones are shortened in the middle.
NAME_WIDTH = 60


def middle_ellipsis(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters by replacing its middle with ``...``: a path's start
    (which folder) and end (which file, its extension) say more than either alone."""
    if len(text) <= width:
        return text
    if width <= 3:
        return text[:width]
    keep = width - 3
    head = keep // 2
    return text[:head] + "..." + text[len(text) - (keep - head):]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict",
        help="tell the genre of audio files, folders or URLs",
        description="Tell the genre of audio files, folders (searched recursively) or http(s) URLs "
        "(anything yt-dlp can fetch). Uses the pretrained default model unless --model is given.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="audio file, folder or http(s) URL; '-' reads more of them from stdin, one per line")
    p.add_argument("--model", default=None, metavar="PATH|default",
                   help="model file or folder from `genrekit train`, or a built-in: 'default' (mn04, the default) or 'musicnn' "
                        "(two backbones: MSD tags, 3 s segments)")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="output format: table (default), json (one array), jsonl (one object per line) or csv")
    p.add_argument("--segments", action="store_true",
                   help="also give each segment's genre (table: indented lines; json/jsonl: a segments list "
                   "in each record; csv: one row per segment, with the track's genre in track_genre)")
    p.add_argument("--timeline", metavar="DIR", type=Path, default=None,
                   help="write a timeline PNG per input into DIR (records name it in their timeline field)")
    p.add_argument("--closed-set", action="store_true",
                   help="always answer one of the model's genres (the nearest), never 'other' (the default "
                   "model answers 'other' for music outside its ten genres)")
    p.add_argument("--top-tags", type=non_negative_int, default=3, metavar="K",
                   help="report the K most probable tags for models that have them (default 3; 0: none)")
    add_tags_option(p)
    p.add_argument("--max-duration", type=duration(allow_zero=True), default="3h", metavar="DURATION",
                   help="refuse URLs whose audio is longer than this: seconds, or with a unit (90s, 20m, 3h) "
                   "(default 3h; 0: no limit)")
    p.add_argument("--max-size", type=non_negative_float, default=200.0, metavar="MB",
                   help="refuse URL downloads larger than MB megabytes (default 200; 0: no limit)")
    p.add_argument("--timeout", type=duration(), default="30s", metavar="DURATION",
                   help="network timeout for URLs: each connect and read (default 30s)")
    p.add_argument("--download-timeout", type=duration(allow_zero=True), default="10m", metavar="DURATION",
                   help="longest a URL's whole download may take, however the server trickles "
                   "(default 10m; 0: no limit)")
    p.add_argument("--block-seconds", type=positive_float, default=300.0, metavar="S", help=argparse.SUPPRESS)
    p.add_argument("--progress", action="store_true", help="show a progress bar even when stderr is not a terminal")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    p.set_defaults(func=run)
    return p


def expand_inputs(inputs: list[str], stdin: TextIO | None = None) -> Iterator[tuple[str, str | None]]:
    """(input, error) pairs: folders become their audio files (sorted, recursive, hidden names such
    as macOS ``._song.wav`` sidecars left out); URLs and files pass through, hidden or not, since
    the user named them (missing files fail later with their own message). ``-`` is replaced by
    the lines of ``stdin`` (default ``sys.stdin``), each one input as if named on the command line
    (blank lines skipped; a line is taken as written, spaces included, as file names may hold them).
    What a folder walk cannot read (a subfolder or the folder itself without permission, a link
    loop) comes back as an input with its error, so it is reported like any failed input and the
    batch goes on."""
    from genrekit.audio import audio_files_under
    from genrekit.urls import is_url

    def lines() -> Iterator[str]:
        stream = sys.stdin if stdin is None else stdin
        for line in stream:
            line = line.rstrip("\r\n")
            if line.strip():
                yield line

    for raw in inputs:
        if raw == STDIN:
            n = 0
            for line in lines():
                n += 1
                yield from expand_inputs([line]) if line != STDIN else [(line, "'-' inside the stdin list")]
            if n == 0:
                yield raw, "stdin held no inputs"
            continue
        if is_url(raw):
            yield raw, None
            continue
        p = Path(raw)
        if p.is_dir():
            problems: list[tuple[Path, str]] = []
            files = audio_files_under(p, problems)
            if not files and not problems:
                yield raw, "folder holds no audio files"
            for where, reason in problems:
                yield str(where), reason
            for f in files:
                yield str(f), None
        else:
            yield raw, None


def _top3(pred: Any) -> str:
    return ", ".join(f"{g} {format_percent(p)}" for g, p in pred.top(3))


class _Writer:
    """Writes one prediction (or one failed input's record) at a time in the chosen format.

    The table lines its columns up for names up to :data:`NAME_WIDTH` characters; a longer name
    is shortened in the middle (``/home/me/Mu...ong title.mp3``), where the folder and the file
    name's end stay readable. The table is for people: the machine formats (json, jsonl, csv)
    keep every name whole. The table's header is written with its first row, so a run where
    every input fails leaves stdout empty (the failures are on stderr).
    """

    def __init__(self, fmt: str, out: TextIO, labels: list[str], segments: bool, emit: Callable[[str], None],
                 timeline: bool = False) -> None:
        self.fmt, self.out, self.labels, self.segments, self.emit = fmt, out, labels, segments, emit
        self.timeline = timeline
        self.n_records = 0
        self.input_width = 40
        self.n_csv_cols = 0  # columns before "error", set by header() for csv
        self._table_header: str | None = None  # written with the table's first row

    def header(self, inputs: list[str]) -> None:
        if self.fmt == "table":
            self.input_width = max(5, min(NAME_WIDTH, max((len(printable(i)) for i in inputs), default=5)))
            self._table_header = f"{'input':<{self.input_width}}  {'genre':<12} {'conf':>5}  {'duration':>8}  top-3"
        elif self.fmt == "json":
            self.emit("[")
        elif self.fmt == "csv":
            if self.segments:  # segment rows carry the track's genre too: no second file needed for it
                cols = ["input", "track_genre", "start_s", "end_s", "genre", "confidence", "in_set"]
            else:
                cols = ["input", "genre", "confidence", "nearest", "in_set", "style", "duration_s"]
            cols += [f"p_{lab}" for lab in self.labels] + ([] if self.segments else ["tags", "model"])
            cols += ["timeline"] if self.timeline else []
            self.n_csv_cols = len(cols)
            self.emit(_csv_line(cols + ["error"]))

    def footer(self) -> None:
        """Close what header() opened (the json array), also after an interrupted batch."""
        if self.fmt == "json":
            self.emit("]")

    def _record(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False)
        if self.fmt == "json":  # one record per line inside the array: valid JSON, still greppable
            line = ("  " if self.n_records == 0 else ", ") + line
        self.n_records += 1
        self.emit(line)

    def write(self, pred: Any, png: Path | None = None) -> None:
        tl = [str(png) if png is not None else ""] if self.timeline else []
        if self.fmt in ("json", "jsonl"):
            record = pred.to_dict(segments=self.segments)
            if self.timeline:
                record["timeline"] = str(png) if png is not None else None
            self._record(record)
        elif self.fmt == "csv":
            if self.segments:
                for s in pred.segments:
                    self.emit(_csv_line([pred.input, pred.genre, f"{s.start_s:.3f}", f"{s.end_s:.3f}", s.genre,
                                         f"{s.confidence:.4f}", _num(s.in_set)]
                                        + [f"{s.probabilities[lab]:.4f}" for lab in self.labels] + tl + [""]))
            else:
                tags = ";".join(f"{t['tag']}:{t['probability']:.3f}" for t in pred.tags or [])
                self.emit(_csv_line([pred.input, pred.genre, f"{pred.confidence:.4f}", pred.nearest or pred.genre,
                                     _num(pred.in_set), pred.style or "", f"{pred.duration_s:.2f}"]
                                    + [f"{pred.probabilities[lab]:.4f}" for lab in self.labels]
                                    + [tags, pred.model] + tl + [""]))
        else:
            if self._table_header is not None:
                self.emit(self._table_header)
                self._table_header = None
            # a newline or an escape sequence in a file name stays on its row; a long name is
            # shortened in the middle so the columns stay in line
            name = middle_ellipsis(printable(pred.input), self.input_width)
            line = (f"{name:<{self.input_width}}  {pred.genre:<12} {format_percent(pred.confidence):>5}  "
                    f"{format_duration(pred.duration_s):>8}  {_top3(pred)}")
            if pred.tags:
                line += "  | tags: " + ", ".join(t["tag"] for t in pred.tags)
            self.emit(line)
            if pred.is_other:  # say plainly what "other" means, and what is known about the music
                self.emit(f"    not one of the {len(self.labels)} genres this model knows"
                          + (f"; sounds like {pred.style}" if pred.style else "")
                          + f"; {format_percent(pred.confidence)} sure of that (in-set score "
                          f"{format_percent(pred.in_set)}); nearest: {pred.nearest} "
                          f"({format_percent(pred.nearest_probability)} among the {len(self.labels)})")
            if self.segments:
                for s in pred.segments:
                    self.emit(f"    {format_clock(s.start_s):>9} - {format_clock(s.end_s):>9}  {s.genre:<12} "
                              f"{format_percent(s.confidence):>5}")
            if png is not None:
                self.emit(f"    timeline: {png}")

    def write_error(self, src: str, reason: str) -> None:
        """The record of an input that failed, so json/jsonl/csv keep one record per input; the
        table shows only predictions (the stderr line is the failure's record there)."""
        if self.fmt in ("json", "jsonl"):
            self._record({"input": src, "error": reason})
        elif self.fmt == "csv":
            self.emit(_csv_line([src] + [""] * (self.n_csv_cols - 1) + [reason]))


def _num(v: float | None) -> str:
    """A CSV cell for an optional score: empty for models without it."""
    return "" if v is None else f"{v:.4f}"


def _csv_line(values: list[Any]) -> str:
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(values)
    return buf.getvalue()


def _unique_png(directory: Path, name: str, used: set[str]) -> Path:
    from genrekit.timeline import safe_stem

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
    from genrekit.errors import require

    require("matplotlib", "--timeline")  # the light install draws no PNG: one line, before any input
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
    from genrekit.timeline import plot_timeline

    try:
        return plot_timeline(pred, _unique_png(directory, src, used))
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:
        if os.environ.get("GENREKIT_DEBUG"):
            raise
        raise GenrekitError(f"{src}: cannot write timeline ({one_line(exc)})") from None


def _terminal_stream() -> TextIO:
    """A second handle on stderr for the progress bars. Decoding runs inside
    ``audio.quiet_native_stderr``, which points file descriptor 2 at a temporary file to silence C
    decoders; the bar inside a long input is drawn meanwhile, so it writes to a copy of the
    descriptor made before that. (Captured stderr without a descriptor: sys.stderr itself.)"""
    try:
        fd = os.dup(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        return sys.stderr
    return os.fdopen(fd, "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                     errors="replace")


def run(args: argparse.Namespace) -> int:
    from genrekit.audio import NativeNoise, quiet_native_stderr
    from genrekit.prediction import Classifier

    classifier = Classifier.load(
        args.model,
        tags=args.tags,
        top_tags=args.top_tags,  # argparse: >= 0; the caps below: >= 0, 0 meaning none
        max_bytes=int(args.max_size * 1e6) if args.max_size else None,
        max_duration_s=args.max_duration if args.max_duration else None,
        timeout_s=args.timeout,
        download_timeout_s=args.download_timeout or None,
        block_seconds=args.block_seconds,
        open_set=not args.closed_set,
    )
    if args.timeline is not None:
        _prepare_timeline_dir(args.timeline)
    items = list(expand_inputs(args.inputs))
    show_bar = (args.progress or sys.stderr.isatty()) and not args.no_progress and len(items) > 0
    bar = None
    inner: list[Any] = []  # the bar over the current long input's seconds, made on its first report
    bar_stream = _terminal_stream() if show_bar else sys.stderr
    if show_bar:
        from tqdm import tqdm

        bar = tqdm(total=len(items), unit="input", file=bar_stream, dynamic_ncols=True, leave=False)

    def say(line: str, stream: TextIO) -> None:
        """One line on ``stream``, above the progress bars when there are some."""
        def write(text: str) -> None:
            bar.write(text, file=stream) if bar is not None else print(text, file=stream, flush=True)

        try:
            write(line)
        except UnicodeEncodeError:  # a file name that is not UTF-8, on a strict stream: show it with U+FFFD
            write(printable(line))

    def emit(line: str) -> None:
        say(line, sys.stdout)

    def error(line: str) -> None:
        """stderr is for people: names in it are escaped (control characters, bidi overrides)."""
        say(printable(line), sys.stderr)

    def within(done_s: float, total_s: float) -> None:
        """Progress inside one long input, in seconds of audio."""
        from tqdm import tqdm

        if not inner:
            inner.append(tqdm(total=round(total_s), unit="s", desc="  audio", file=bar_stream,
                              dynamic_ncols=True, leave=False, position=1))
        inner[0].update(max(0, min(round(done_s), inner[0].total) - inner[0].n))

    def close_inner() -> None:
        if inner:
            inner.pop().close()

    writer = _Writer(args.format, sys.stdout, classifier.labels, args.segments, emit, timeline=args.timeline is not None)
    writer.header([i for i, _ in items])
    failed = 0
    used: set[str] = set()
    try:
        for src, problem in items:
            if bar is not None:
                bar.set_postfix_str(printable(os.path.basename(src.rstrip("/")))[:30], refresh=False)
            noise = NativeNoise()
            try:
                if problem is not None:
                    raise GenrekitError(f"{src}: {problem}")
                # what C decoders print on fd 2 goes into this input's error, not the terminal
                with quiet_native_stderr() as noise:
                    pred = classifier.predict(src, progress=within if bar is not None else None)
                close_inner()
                # the PNG is written before the record, so an input whose timeline fails is reported
                # once, as failed, instead of as a prediction followed by an error
                png = _write_timeline(pred, src, args.timeline, used) if args.timeline is not None else None
            except GenrekitError as exc:
                close_inner()
                failed += 1
                error(f"genrekit: error: {exc}")  # one line of ours; the decoder's words go into the record
                writer.write_error(src, _reason(exc, src) + noise.note())
            except (KeyboardInterrupt, MemoryError):
                raise
            except Exception as exc:  # a bug should not kill a long batch, nor print a traceback
                if os.environ.get("GENREKIT_DEBUG"):
                    raise
                close_inner()
                failed += 1
                reason = f"unexpected {one_line(exc)}"
                error(f"genrekit: error: {src}: {reason}")
                writer.write_error(src, reason + noise.note())
            else:
                writer.write(pred, png)
            if bar is not None:
                bar.update(1)
    finally:
        close_inner()
        writer.footer()
        if bar is not None:
            bar.close()
        if bar_stream is not sys.stderr:
            bar_stream.close()
    if failed and len(items) > 1:
        error(f"genrekit: {failed} of {len(items)} inputs failed")
    return 1 if failed else 0
