"""Browser-facing hygiene of the web service, as one ASGI middleware in front of every route.

- **Host check** (DNS rebinding to the local server): a page on ``evil.example`` whose name is
  re-pointed at 127.0.0.1 talks to the server as a same-origin site, so the Origin check alone cannot
  stop it; its requests still carry ``Host: evil.example``. Only IP literals, ``localhost``, names
  without a dot (a machine's own or hosts-file names: public DNS cannot hand one to an attacker) and
  the names given with ``--server-name`` are answered; others get 400.
- **Origin check** (cross-site requests): a browser sends ``Origin`` with every cross-origin POST, and a
  multipart form needs no preflight, so without this any web page could drive a local server. A
  request whose ``Origin`` is not this server's own and not in ``--allow-origin`` is refused (403)
  unless its method is GET/HEAD/OPTIONS. Allowed origins also get CORS headers (and preflight
  answers), so their pages can read the answers. Clients that send no ``Origin`` (curl, scripts) pass.
- **Response headers**: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
  ``X-Frame-Options: DENY`` and a Content-Security-Policy that allows the page's own script, style and
  API only (Swagger UI's ``/docs`` page starts with an inline script and keeps only ``frame-ancestors``).
"""

from __future__ import annotations

import ipaddress
import json
import urllib.parse
from collections.abc import Sequence
from typing import Any

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
DOCS_CSP = "frame-ancestors 'none'"
DOCS_PATHS = ("/docs", "/redoc")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def split_host(value: str) -> tuple[str, int | None]:
    """``"Example.org:8000"`` -> ("example.org", 8000); ``"[::1]:80"`` -> ("::1", 80); port None if absent
    or not a number."""
    p = urllib.parse.urlsplit("//" + value.strip())
    try:
        port = p.port
    except ValueError:
        port = None
    return (p.hostname or "").lower().rstrip("."), port


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class WebGuard:
    """ASGI middleware: Host and Origin checks, CORS for allowed origins, security headers."""

    def __init__(self, app: Any, *, server_names: Sequence[str] = (), allowed_origins: Sequence[str] = ()) -> None:
        self.app = app
        self.server_names = {n.lower().rstrip(".") for n in server_names}
        self.any_origin = "*" in allowed_origins
        self.allowed_origins = {o.rstrip("/").lower() for o in allowed_origins if o != "*"}

    def host_ok(self, host: str | None) -> bool:
        if host is None:  # HTTP/1.0 without Host: nothing a browser sends
            return True
        name, _ = split_host(host)
        return bool(name) and (_is_ip(name) or "." not in name or name.endswith(".localhost")
                               or name in self.server_names)

    def origin_allowed(self, origin: str) -> bool:
        return self.any_origin or origin.rstrip("/").lower() in self.allowed_origins

    @staticmethod
    def same_origin(origin: str, host: str | None) -> bool:
        """The page's origin names the host and port the request was sent to. A missing port means
        the origin scheme's default on both sides: behind a TLS-terminating proxy the server itself
        speaks plain HTTP while the page's origin is https."""
        o = urllib.parse.urlsplit(origin)
        if o.scheme not in ("http", "https") or host is None:
            return False
        default = {"http": 80, "https": 443}[o.scheme]
        oname, oport = split_host(o.netloc)
        hname, hport = split_host(host)
        return (oname, oport or default) == (hname, hport or default)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host")
        origin = headers.get("origin")
        method = scope.get("method", "GET")
        path = scope.get("path", "")
        cors = origin is not None and self.origin_allowed(origin)
        extra = self._headers(path, origin if cors else None)
        if not self.host_ok(host):
            name, _ = split_host(host or "")
            await _answer(send, 400, f"unknown Host {host!r}: this server answers to IP addresses, names "
                                     f"without a dot and names given with --server-name "
                                     f"(e.g. --server-name {name or 'NAME'})",
                          extra)
            return
        if origin is not None and method not in SAFE_METHODS and not cors \
                and not self.same_origin(origin, host):
            await _answer(send, 403, f"cross-origin request from {origin} refused; start the server with "
                                     f"--allow-origin {origin} to accept it", extra)
            return
        if method == "OPTIONS" and cors and "access-control-request-method" in headers:
            await _answer(send, 204, None, extra + [
                (b"access-control-allow-methods", b"GET, HEAD, POST"),
                (b"access-control-allow-headers", b"content-type"),
                (b"access-control-max-age", b"600")])
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [(k, v) for k, v in extra if k not in have]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    def _headers(path: str, cors_origin: str | None) -> list[tuple[bytes, bytes]]:
        docs = path.startswith(DOCS_PATHS)
        out = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
               (b"x-frame-options", b"DENY"),
               (b"content-security-policy", (DOCS_CSP if docs else CSP).encode())]
        if cors_origin is not None:
            out += [(b"access-control-allow-origin", cors_origin.encode("latin-1")), (b"vary", b"Origin")]
        return out


async def _answer(send: Any, status: int, detail: str | None, headers: list[tuple[bytes, bytes]]) -> None:
    body = b"" if detail is None else json.dumps({"detail": detail}).encode()
    hdrs = list(headers) + [(b"content-length", str(len(body)).encode())]
    if detail is not None:
        hdrs.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})
