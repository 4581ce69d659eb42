"""User-facing errors: one line that names the input and the reason.

The CLI prints ``genrekit: error: <message>`` for these and never a traceback, so every message
must stand alone.
"""

from __future__ import annotations


class GenrekitError(Exception):
    """Base class of errors meant for users (bad input, missing weights, bad options)."""


class AudioError(GenrekitError):
    """An input that cannot be decoded or is unusable as music (empty, silent, too short)."""

    def __init__(self, source: object, reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class ModelFileError(GenrekitError):
    """A model file that is missing, unreadable or not a genrekit model."""


def detail(exc: BaseException, limit: int = 120) -> str:
    """What went wrong, for a user, in a few words and without Python's class name: an OS error's
    own text ("Permission denied"), the first line of anything else, or "" when the exception says
    nothing (the caller then leaves the detail out). For expected failures (a file that is not
    audio, a download refused); for bugs, :func:`one_line` keeps the type, which a report needs."""
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else ""


def with_detail(reason: str, exc: BaseException) -> str:
    """``"reason (detail)"``, or just ``reason`` when the exception adds nothing to it."""
    d = detail(exc)
    return f"{reason} ({d})" if d and d.lower() not in reason.lower() else reason


def one_line(exc: BaseException, limit: int = 150) -> str:
    """An unexpected exception (a bug) as one short line for a message about an input ("TypeError:
    ..."): some libraries put whole signatures or tracebacks in their messages."""
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:limit]}" if first else type(exc).__name__
