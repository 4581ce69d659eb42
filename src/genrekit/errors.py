"""User-facing errors: one line that names the input and the reason.

The CLI prints ``genrekit: error: <message>`` for these and never a traceback, so every message
must stand alone.
"""

from __future__ import annotations

import re


class GenrekitError(Exception):
    """Base class of errors meant for users (bad input, missing weights, bad options)."""


#: Optional packages -> the extra of ``pip install 'genrekit[EXTRA]'`` that brings them: the light
#: install (no extras) predicts, batches, serves, tags and sorts; each of these serves only some
#: commands (training, plots, Ray, beets).
EXTRAS = {"torch": "train", "sklearn": "train", "matplotlib": "plots", "scipy": "train", "ray": "ray",
          "beets": "beets", "pyarrow": "batch", "librosa": "dev", "yt_dlp": "urls"}


def missing_extra(exc: ModuleNotFoundError, what: str) -> GenrekitError | None:
    """The one-line error for ``what`` (a command, an option) failing because an optional
    package is not installed, or None when ``exc`` is about some other module."""
    top = (exc.name or "").split(".")[0]
    if top not in EXTRAS:
        return None
    return GenrekitError(f"{what} needs {top}, which is not installed: pip install 'genrekit[{EXTRAS[top]}]'")


def require(module: str, what: str) -> None:
    """Raise the one-line :func:`missing_extra` error now when ``module`` is not installed (before
    work starts, rather than as a per-input failure later)."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        err = missing_extra(ModuleNotFoundError(name=module), what)
        raise err or GenrekitError(f"{what} needs {module}, which is not installed")


class AudioError(GenrekitError):
    """An input that cannot be decoded or is unusable as music (empty, silent, too short)."""

    def __init__(self, source: object, reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")

    def for_source(self, source: object) -> AudioError:
        """The same error (same class) about ``source``: callers name the input as the user gave
        it (an upload's name, a URL) rather than the temporary file that was decoded."""
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.source = str(source)
        new.args = (f"{new.source}: {self.reason}",)
        return new


class AudioTooLong(AudioError):
    """Audio longer than a limit (``--max-duration``, the server's ``max_duration_s``).

    ``claimed_s`` is set when the header's own claim was already over the limit (refused before
    decoding); otherwise decoding stopped as soon as the decoded samples passed ``limit_s``.
    """

    def __init__(self, source: object, limit_s: float, claimed_s: float | None = None) -> None:
        self.limit_s = float(limit_s)
        self.claimed_s = claimed_s
        if claimed_s is not None:
            reason = f"audio is {claimed_s:.0f} s long; the limit is {limit_s:g} s"
        else:
            reason = f"audio is longer than the limit of {limit_s:g} s (decoding stopped there)"
        super().__init__(source, reason)


class ModelFileError(GenrekitError):
    """A model file that is missing, unreadable or not a genrekit model."""


class BackboneWeightsError(GenrekitError):
    """A pretrained backbone's weights cannot be found, or a file given as them is not them: the
    machine's problem, not one input's, so a batch stops with this one line instead of blaming
    every file in turn."""


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


#: Characters that must not reach a terminal or a one-line message raw: C0/C1 controls (newline
#: splits a line, ESC starts terminal escape sequences), line separators and bidi overrides
#: (which reorder what follows, e.g. to show "evil\u202egnp.wav" as "evilvaw.png").
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` made safe for people: control characters escaped, undecodable bytes as U+FFFD.

    File names may hold anything but "/" and NUL. Human output (error lines, the predict table,
    timeline titles) goes through here, so a newline in a name cannot split a line and an escape
    sequence cannot reach the terminal; machine output (JSON lines, CSV) keeps names exact.
    Python keeps bytes of a file name that are not UTF-8 as lone surrogates (b'bad\\xffname.wav'
    -> 'bad\\udcffname.wav') so the name still opens the file; renderers (matplotlib) and strict
    UTF-8 writers reject them, so they become U+FFFD.
    """
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # surrogates that are not escaped bytes
        text = text.encode("utf-8", "replace").decode("utf-8")
    return _UNPRINTABLE.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                                                  else f"\\u{ord(m.group()):04x}"), text)
