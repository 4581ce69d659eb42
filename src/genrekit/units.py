"""How durations and probabilities are written for people, and how durations are read back.

One place for these so every command says the same thing the same way: a track's length is
``m:ss`` (``h:mm:ss`` from an hour) in ``predict``, ``demo`` and the training ETA; a segment
boundary adds tenths; a probability shown to a person is a whole percent (``80%``), while machine
formats (JSON, CSV) keep the 0..1 float. Every option of every command that takes a duration or
a timeout (``--max-duration``, ``--timeout``, ``--part-seconds``, ...) reads it with
:func:`parse_duration` through ``cli.argtypes.duration``: a bare number is seconds, and ``s`` /
``m`` / ``h`` suffixes are read as written (``90s``, ``20m``, ``1h30m``).
"""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(hours?|hr|h|minutes?|min|m|seconds?|sec|s)?", re.IGNORECASE)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a bare number is seconds; ``90s``, ``20m``, ``1.5h``, ``1h30m``,
    ``2m30s`` are read as written. Raises ValueError with a message for people."""
    s = text.strip()
    if not s:
        raise ValueError("empty duration")
    pos, total, units_seen, bare = 0, 0.0, [], False
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"{text!r} is not a duration (use seconds, or e.g. 90s, 20m, 1h30m)")
        unit = (m.group(2) or "s")[0].lower()
        bare = bare or m.group(2) is None
        units_seen.append(unit)
        if bare and len(units_seen) > 1:  # "1h30" is ambiguous: 30 what?
            raise ValueError(f"{text!r}: give every part a unit (e.g. 1h30m)")
        total += float(m.group(1)) * _UNIT_SECONDS[unit]
        pos = m.end()
        while pos < len(s) and s[pos].isspace():
            pos += 1
    if len(set(units_seen)) != len(units_seen):
        raise ValueError(f"{text!r}: each unit at most once")
    if not math.isfinite(total):
        raise ValueError(f"{text!r} is not a finite duration")
    return total


def format_duration(seconds: float) -> str:
    """``m:ss`` under an hour, ``h:mm:ss`` from one hour, rounded to the second (``0:30``,
    ``12:05``, ``2:00:00``)."""
    s = int(round(max(0.0, float(seconds))))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def format_clock(seconds: float) -> str:
    """A position in a track to a tenth of a second (``0:19.5``): segments about 0.98 s apart
    would print the same whole second twice."""
    tenths = int(round(max(0.0, float(seconds)) * 10))
    return f"{format_duration(tenths // 10)}.{tenths % 10}"


def format_percent(p: float) -> str:
    """A probability for people: a whole percent (``80%``); ``<1%`` for small non-zero values so
    an unlikely genre does not read as impossible, and ``>99%`` short of 1 so nothing reads as certain."""
    v = float(p) * 100
    if 0 < v < 0.5:
        return "<1%"
    if 99.5 <= v < 100:
        return ">99%"  # not "100%": the model is not certain
    return f"{v:.0f}%"


def format_bytes(n: float) -> str:
    """A size for people, in powers of 1000 as file managers show them (``46.2 MB``)."""
    v = float(n)
    for unit in ("B", "kB", "MB"):
        if abs(v) < 1000:
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1000
    return f"{v:.1f} GB"
