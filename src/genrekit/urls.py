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

Every connection yt-dlp makes goes through :class:`genrekit.netguard.Fetch` (a request handler of our
own replaces yt-dlp's): reads wait in short slices, so a download has a **total** deadline
(``total_timeout_s``) on top of the per-read ``timeout_s`` and can be cancelled from another thread
(``cancel``); with ``allowed_networks`` (the web service) every connection, each redirect hop and every
URL an extractor derives included, is made to an address checked at connect time, and only formats
that yt-dlp downloads itself over HTTP are chosen (no external programs that would connect on their own).
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genrekit.errors import AudioError, GenrekitError, with_detail
from genrekit.netguard import BadUrl, Fetch, Network, parse_url

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_MAX_DURATION_S = 3 * 3600.0
DEFAULT_TIMEOUT_S = 30.0
#: Whole download (page, redirects, media): a server that trickles bytes cannot keep it going for hours.
DEFAULT_TOTAL_TIMEOUT_S = 600.0
#: Protocols yt-dlp downloads itself through our connections (guarded mode): plain HTTP, HLS, DASH.
_GUARDED_PROTOCOLS = r"^(https?|m3u8_native|http_dash_segments(_generator)?)$"


class UrlError(GenrekitError):
    """A URL that could not give audio: bad scheme, HTTP error, web page, over a cap."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")


class UrlMalformed(UrlError):
    """The URL itself is malformed or not http(s)."""


class UrlRefused(UrlError):
    """The URL (a redirect, or a URL derived from its page) leads to an address that is not allowed."""


class UrlTimeout(UrlError):
    """The download ran past its total time limit."""


class UrlCancelled(UrlError):
    """The download was cancelled by its caller."""


def is_url(s: object) -> bool:
    """True for strings that look like a URL (``scheme://...``); only http(s) will be accepted."""
    return isinstance(s, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", s) is not None


def _check_url(url: str, credentials: bool) -> None:
    try:
        parse_url(url, credentials=credentials)
    except BadUrl as exc:
        raise UrlMalformed(url, str(exc)) from None


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
    total_timeout_s: float | None = DEFAULT_TOTAL_TIMEOUT_S,
    allowed_networks: Sequence[Network] | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Download the audio of ``url`` into ``dest_dir`` and return the file's path.

    ``timeout_s`` bounds each connect and read, ``total_timeout_s`` (None or 0: none) the whole
    download; ``cancel`` stops it from another thread within a fraction of a second. With
    ``allowed_networks`` (a sequence, possibly empty) every connection must reach a public address
    or one inside those networks (:class:`UrlRefused` otherwise), and URLs with credentials are
    refused. The caller owns ``dest_dir`` (use a ``TemporaryDirectory``); on any failure what was
    written here is removed before :class:`UrlError` is raised.
    """
    guarded = allowed_networks is not None
    _check_url(url, credentials=not guarded)
    try:
        import yt_dlp  # noqa: F401 - the one place that says it is missing
        from yt_dlp.utils import DownloadError, YoutubeDLError
    except ImportError:  # the light install: URLs are the `urls` extra
        raise UrlError(url, "yt-dlp is not installed (pip install 'genrekit[urls]')") from None

    fetch = Fetch(allowed=allowed_networks, read_timeout_s=timeout_s, total_timeout_s=total_timeout_s or None,
                  cancel=cancel)
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
        "external_downloader": {"default": "native"},
        "hls_prefer_native": True,
    }
    if guarded:
        f = f"[protocol~='{_GUARDED_PROTOCOLS}']"
        opts["format"] = f"bestaudio{f}/best{f}"
        opts["proxy"] = ""  # connect directly: a proxy's address is not the target's
    if max_bytes is not None:
        opts["max_filesize"] = int(max_bytes)

    def cleanup() -> None:
        for p in set(dest.iterdir()) - before:
            if p.is_file():
                p.unlink(missing_ok=True)

    def failure(exc: BaseException) -> UrlError:
        """Why the download failed, the connection layer's account first."""
        if fetch.refused is not None:
            return UrlRefused(url, str(fetch.refused))
        if fetch.cancel.is_set():
            return UrlCancelled(url, "download cancelled")
        if fetch.expired:
            return UrlTimeout(url, f"download took longer than the {total_timeout_s:g} s limit")
        if state["too_big"] is not None or isinstance(exc, _TooBig):
            return UrlError(url, f"too large: over the {_mb(max_bytes or 0)} cap")
        if isinstance(exc, (DownloadError, YoutubeDLError, OSError)):
            return UrlError(url, _reason(exc, url))
        return UrlError(url, with_detail("download failed", exc))

    try:
        with _ydl_class(fetch)(opts) as ydl:
            info = ydl.extract_info(url, download=False)
            if info is None:
                raise UrlError(url, "no media found at this URL")
            if info.get("_type") in ("playlist", "multi_video"):
                raise UrlError(url, "URL is a playlist; give the URL of a single track")
            if info.get("is_live"):  # endless, and yt-dlp hands live streams to ffmpeg, outside our sockets
                raise UrlError(url, "URL is a live stream; give the URL of a recording")
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
        raise failure(exc) from None
    except Exception as exc:  # yt-dlp internals: still one line, never a traceback
        cleanup()
        raise failure(exc) from None

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
        if fetch.refused is not None:  # yt-dlp gave up quietly after a refused connection
            raise UrlRefused(url, str(fetch.refused))
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
    from genrekit.audio import audio_info

    try:
        ai = audio_info(path)
    except AudioError as exc:
        cleanup()
        raise UrlError(url, f"downloaded file is not usable audio: {exc.reason}") from None
    if max_duration_s is not None and ai.duration_s > max_duration_s:
        cleanup()
        raise UrlError(url, f"too long: {ai.duration_s / 60:.0f} min, the cap is {max_duration_s / 60:.0f} min")
    return path


@functools.lru_cache(maxsize=1)
def _ydl_base() -> tuple[type, type, type]:
    """yt-dlp classes our request handler builds on (imported once, lazily)."""
    import http.client
    import urllib.request

    import yt_dlp
    from yt_dlp.networking import _urllib as yu

    class FetchHTTPHandler(yu.HTTPHandler):
        """yt-dlp's HTTP(S) handler with connections made by the download's :class:`Fetch`."""

        fetch: Fetch

        def _connection(self, conn_class: type, *args: Any, **kwargs: Any) -> Any:
            hc = conn_class(*args, **kwargs)
            hc._create_connection = self.fetch.create_connection  # every hop, the same guard
            if self._source_address is not None:
                hc.source_address = (self._source_address, 0)
            return hc

        def http_open(self, req: Any) -> Any:
            conn_class = self._make_conn_class(http.client.HTTPConnection, req)
            return self.do_open(functools.partial(self._connection, conn_class), req)

        def https_open(self, req: Any) -> Any:
            conn_class = self._make_conn_class(http.client.HTTPSConnection, req)
            return self.do_open(functools.partial(self._connection, conn_class), req, context=self._context)

    class GenrekitRH(yu.UrllibRH):
        """yt-dlp's urllib request handler, http(s) only, on :class:`FetchHTTPHandler`; proxies are
        used only when the download is not guarded (the guard must see the target's address)."""

        RH_NAME = "genrekit"
        _SUPPORTED_URL_SCHEMES = ("http", "https")
        fetch: Fetch

        def _create_instance(self, proxies: Any, cookiejar: Any, legacy_ssl_support: Any = None) -> Any:
            handler = FetchHTTPHandler(
                debuglevel=0, source_address=self.source_address,
                context=self.fetch.ssl_context(self._make_sslcontext(legacy_ssl_support=legacy_ssl_support)))
            handler.fetch = self.fetch
            handlers: list[Any] = [] if self.fetch.allowed is not None else [yu.ProxyHandler(proxies)]
            handlers += [handler, urllib.request.HTTPCookieProcessor(cookiejar), urllib.request.UnknownHandler(),
                         urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor(),
                         yu.RedirectHandler()]
            opener = urllib.request.OpenerDirector()
            for h in handlers:
                opener.add_handler(h)
            opener.addheaders = []
            return opener

    return yt_dlp.YoutubeDL, GenrekitRH, FetchHTTPHandler


def _ydl_class(fetch: Fetch) -> type:
    """A YoutubeDL whose only request handler is ours, bound to ``fetch``: no other handler (requests,
    curl_cffi, websockets) can open a connection the guard and the deadline do not see."""
    base, rh_base, _ = _ydl_base()
    rh = type("GenrekitRH", (rh_base,), {"fetch": fetch})

    def build_request_director(self: Any, handlers: Any, preferences: Any = None) -> Any:
        return base.build_request_director(self, [rh], set())

    return type("GenrekitYDL", (base,), {"build_request_director": build_request_director})


def _looks_like_html(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body"))
