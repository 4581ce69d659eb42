"""argparse types shared by the commands: numbers checked where they are parsed, so a bad value
is argparse's one usage line (exit 2) before any data is read or any folder is made."""

from __future__ import annotations

import argparse
import math


def int_at_least(lo: int, hi: int | None = None):
    """argparse type: a whole number >= ``lo`` (and <= ``hi``), so --epochs 0 or --batch-size 0 is
    refused up front."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"{text} must be at least {lo}")
        if hi is not None and v > hi:
            raise argparse.ArgumentTypeError(f"{text} must be at most {hi}")
        return v
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def float_in(lo: float, hi: float | None, lo_open: bool = False, hi_open: bool = True):
    """argparse type: a finite float in [lo, hi) (open or closed ends as given)."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        bad_lo = v <= lo if lo_open else v < lo
        bad_hi = hi is not None and (v >= hi if hi_open else v > hi)
        if not math.isfinite(v) or bad_lo or bad_hi:
            cond = (">" if lo_open else ">=") + f" {lo:g}"
            if hi is not None:
                cond += (" and <" if hi_open else " and <=") + f" {hi:g}"
            raise argparse.ArgumentTypeError(f"{text} must be a finite number {cond}")
        return v
    return parse


positive_float = float_in(0.0, None, lo_open=True)
non_negative_float = float_in(0.0, None)
fraction = float_in(0.0, 1.0)  # [0, 1)


def duration(allow_zero: bool = False):
    """argparse type: a duration in seconds, with optional unit suffixes (``90``, ``90s``, ``20m``,
    ``1h30m``; see :func:`genrekit.units.parse_duration`). One type for every command, so
    ``predict --max-duration`` and ``serve --max-duration`` read the same text the same way.
    ``allow_zero``: 0 is accepted (the caller's "no limit")."""
    from genrekit.units import parse_duration

    def parse(text: str) -> float:
        try:
            v = parse_duration(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if v < 0 or (v == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(f"{text} must be {'at least 0' if allow_zero else 'more than 0'} seconds")
        return v
    return parse


def duration_in(lo: float, hi: float):
    """argparse type: a :func:`duration` between ``lo`` and ``hi`` seconds (inclusive)."""
    base = duration()

    def parse(text: str) -> float:
        v = base(text)
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{text} must be between {lo:g} and {hi:g} seconds")
        return v
    return parse


def hidden_sizes(text: str) -> list[int]:
    """argparse type for --hidden: comma-separated layer widths, each >= 1."""
    try:
        sizes = [int(h) for h in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use comma-separated whole numbers, e.g. 256,64") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every layer needs at least 1 unit")
    return sizes


def add_tags_option(p) -> None:
    """``--tags msd|audioset``: the zero-shot tag vocabulary (``prediction.TAG_VOCABULARIES``),
    the same option for ``predict`` and ``batch``."""
    p.add_argument("--tags", choices=("msd", "audioset"), default=None,
                   help="tag vocabulary: audioset (mn04's music classes: instruments, genres such as salsa or "
                   "afrobeat, moods) or msd (musicnn's 50 Million Song Dataset tags, --model musicnn); default: "
                   "the model's own")
