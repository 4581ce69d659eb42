"""The live progress line and end summary of ``genrekit batch`` (stderr).

On a terminal the line is redrawn in place (``\\r``); elsewhere (logs, CI) a plain line is printed
every ``every_s`` seconds, so a log of a day-long run stays readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """Counts done / skipped / failed and shows tracks per minute and the ETA."""

    def __init__(self, total: int, skipped: int = 0, stream: TextIO | None = None, enabled: bool = True,
                 every_s: float | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.every_s = every_s if every_s is not None else (0.5 if self.tty else 30.0)
        self.total, self.skipped = total, skipped
        self.done = self.failed = 0
        self.t0 = time.monotonic()
        self.first_row_at: float | None = None
        self._last = 0.0
        self._width = 0

    def row(self, failed: bool) -> None:
        if self.first_row_at is None:
            self.first_row_at = time.monotonic()
        self.done += 1
        self.failed += int(failed)
        self.show()

    def rate_per_min(self) -> float:
        """Tracks per minute since the first row (start-up is reported on its own)."""
        if self.first_row_at is None or self.done < 2:
            return 0.0
        dt = time.monotonic() - self.first_row_at
        return (self.done - 1) / dt * 60 if dt > 0 else 0.0

    def line(self) -> str:
        rate = self.rate_per_min()
        left = self.total - self.done
        eta = _clock(left / rate * 60) if rate > 0 else "?"
        return (f"batch: {self.done}/{self.total} done, {self.skipped} skipped, {self.failed} failed, "
                f"{rate:.0f} tracks/min, ETA {eta}")

    def show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        text = self.line()
        if self.tty:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
