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
