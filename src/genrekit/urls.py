"""Fetch the audio behind an http(s) URL with yt-dlp's Python API, without ffmpeg.

yt-dlp knows how to get media out of thousands of sites and handles plain media links too (its
"generic" extractor). We ask for ``bestaudio/best`` and keep the download as it is (no
postprocessors, so no ffmpeg): PyAV, whose wheel ships FFmpeg's decoders, reads whatever container
comes back (m4a, webm/opus, mp3, ...). yt-dlp's own console output is silenced and every failure
becomes one :class:`UrlError` line naming the URL, because callers (CLI batch, web service) print
it as is.

Caps: size is refused up front when the server or site says how big the file is (yt-dlp's
``max_filesize``), and enforced again while bytes arrive (a progress hook) and after the download,
because plain media links may come without Content-Length. Duration is refused before downloading
when the site reports it, else after download from the file's header (``audio_info``).
"""

from __future__ import annotations

import os
import re
import urllib.parse
from pathlib import Path
from typing import Any

from .errors import AudioError, GenrekitError, with_detail

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_MAX_DURATION_S = 3 * 3600.0
DEFAULT_TIMEOUT_S = 30.0


class UrlError(GenrekitError):
    """A URL that could not give audio: bad scheme, HTTP error, web page, over a cap."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")


def is_url(s: object) -> bool:
    """True for strings that look like a URL (``scheme://...``); only http(s) will be accepted."""
    return isinstance(s, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", s) is not None


def _check_scheme(url: str) -> None:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme.lower() not in ("http", "https"):
        raise UrlError(url, f"unsupported URL scheme {parsed.scheme!r}: only http and https are allowed")
    if not parsed.netloc:
        raise UrlError(url, "URL has no host")


class _QuietLogger:
    """yt-dlp logger that swallows everything; errors reach us as exceptions instead."""

    def debug(self, msg: str) -> None:
        pass

    info = warning = error = debug


class _TooBig(Exception):
    pass


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def _reason(exc: BaseException, url: str) -> str:
    """A short, user-readable reason from a yt-dlp exception (no ANSI codes, no 'ERROR:' prefix)."""
    cause = getattr(exc, "exc_info", None)
    inner = cause[1] if cause and len(cause) > 1 else None
    status = None
    for e in (inner, getattr(inner, "cause", None), getattr(exc, "cause", None)):
        status = getattr(e, "status", None) or getattr(e, "code", None)
        if isinstance(status, int):
            break
        status = None
    msg = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    msg = re.sub(r"^ERROR:\s*", "", msg)
    msg = re.sub(r"^\[[^\]]+\]\s*[^:]*:\s*", "", msg)  # "[generic] id: " prefix
    if status is not None or re.search(r"HTTP Error (\d+)", msg):
        m = re.search(r"HTTP Error (\d+):?\s*([^;(]*)", msg)
        code = status or (int(m.group(1)) if m else 0)
        text = m.group(2).strip() if m and m.group(2).strip() else ""
        return f"HTTP error {code}" + (f" ({text})" if text else "")
    if "Unsupported URL" in msg:
        return "no audio found at this URL (it serves a web page, not audio or a supported site)"
    if "timed out" in msg.lower():
        return "connection timed out"
    if any(s in msg for s in ("Connection refused", "Name or service not known", "getaddrinfo",
                               "Failed to resolve", "Unable to connect")):
        return "cannot connect to the server"
    msg = msg.replace(url, "").replace("  ", " ").strip(" :;")
    msg = msg.splitlines()[0] if msg else "download failed"
    return msg[:200]


def download_audio(
    url: str,
    dest_dir: str | os.PathLike[str],
    *,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Download the audio of ``url`` into ``dest_dir`` and return the file's path.

    The caller owns ``dest_dir`` (use a ``TemporaryDirectory``); on any failure what was written
    here is removed before :class:`UrlError` is raised.
    """
    _check_scheme(url)
    try:
        import yt_dlp
        from yt_dlp.utils import DownloadError, YoutubeDLError
    except ImportError:  # pragma: no cover - a declared dependency
        raise UrlError(url, "yt-dlp is not installed (pip install yt-dlp)") from None

    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.iterdir())
    state: dict[str, Any] = {"too_big": None}

    def hook(d: dict[str, Any]) -> None:
        got = d.get("downloaded_bytes") or 0
        if max_bytes is not None and got > max_bytes:
            state["too_big"] = got
            raise _TooBig(got)

    opts: dict[str, Any] = {
        "format": "bestaudio/best",
        "outtmpl": {"default": str(dest / "download.%(ext)s")},
        "paths": {"home": str(dest), "temp": str(dest)},
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _QuietLogger(),
        "noplaylist": True,
        "postprocessors": [],
        "socket_timeout": timeout_s,
        "retries": 1,
        "fragment_retries": 1,
        "extractor_retries": 0,
        "cachedir": False,
        "overwrites": True,
        "continuedl": False,
        "nopart": False,
        "progress_hooks": [hook],
        "color": {"stdout": "never", "stderr": "never"},
    }
    if max_bytes is not None:
        opts["max_filesize"] = int(max_bytes)

    def cleanup() -> None:
        for p in set(dest.iterdir()) - before:
            if p.is_file():
                p.unlink(missing_ok=True)

    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            info = ydl.extract_info(url, download=False)
            if info is None:
                raise UrlError(url, "no media found at this URL")
            if info.get("_type") in ("playlist", "multi_video"):
                raise UrlError(url, "URL is a playlist; give the URL of a single track")
            duration = info.get("duration")
            if max_duration_s is not None and duration and float(duration) > max_duration_s:
                raise UrlError(url, f"too long: {float(duration) / 60:.0f} min, the cap is {max_duration_s / 60:.0f} min")
            size = info.get("filesize") or info.get("filesize_approx")
            if max_bytes is not None and size and size > max_bytes:
                raise UrlError(url, f"too large: {_mb(size)}, the cap is {_mb(max_bytes)}")
            info = ydl.process_ie_result(info, download=True)
    except UrlError:
        cleanup()
        raise
    except (DownloadError, YoutubeDLError, _TooBig, OSError) as exc:
        cleanup()
        if state["too_big"] is not None or isinstance(exc, _TooBig):
            raise UrlError(url, f"too large: over the {_mb(max_bytes or 0)} cap") from None
        raise UrlError(url, _reason(exc, url)) from None
    except Exception as exc:  # yt-dlp internals: still one line, never a traceback
        cleanup()
        raise UrlError(url, with_detail("download failed", exc)) from None

    files = [p for p in set(dest.iterdir()) - before
             if p.is_file() and not p.name.endswith((".part", ".ytdl", ".temp"))]
    path = None
    for d in (info or {}).get("requested_downloads") or []:
        fp = d.get("filepath") or d.get("_filename")
        if fp and Path(fp).is_file():
            path = Path(fp)
    if path is None and files:
        path = max(files, key=lambda p: p.stat().st_size)
    if path is None:
        cleanup()
        if max_bytes is not None:  # yt-dlp aborts over-size downloads silently (Content-Length check)
            raise UrlError(url, f"too large: the server reports more than the {_mb(max_bytes)} cap")
        raise UrlError(url, "nothing was downloaded")
    nbytes = path.stat().st_size
    if max_bytes is not None and nbytes > max_bytes:
        cleanup()
        raise UrlError(url, f"too large: {_mb(nbytes)}, the cap is {_mb(max_bytes)}")
    if nbytes == 0:
        cleanup()
        raise UrlError(url, "the server sent an empty file")
    if _looks_like_html(path):
        cleanup()
        raise UrlError(url, "no audio found at this URL (it serves a web page)")
    from .audio import audio_info

    try:
        ai = audio_info(path)
    except AudioError as exc:
        cleanup()
        raise UrlError(url, f"downloaded file is not usable audio: {exc.reason}") from None
    if max_duration_s is not None and ai.duration_s > max_duration_s:
        cleanup()
        raise UrlError(url, f"too long: {ai.duration_s / 60:.0f} min, the cap is {max_duration_s / 60:.0f} min")
    return path


def _looks_like_html(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body"))
