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


def one_line(exc: BaseException, limit: int = 150) -> str:
    """An unexpected exception as one short line for a message about an input ("TypeError: ..."):
    some libraries put whole signatures or tracebacks in their messages."""
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:limit]}" if first else type(exc).__name__
