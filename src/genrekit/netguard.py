"""Guarded, time-bounded TCP connections for URL downloads.

Two jobs, both done where the connection is made rather than before it:

**Address guard** (the web service's ``--allow-urls``). A service that fetches any URL would let
anyone make it read ``http://127.0.0.1:...``, cloud metadata at ``169.254.169.254`` or hosts on its
private network. Checking the URL first and letting a library fetch it afterwards does not hold: the
library follows redirects to other hosts, extractors derive further URLs (an HTML page's
``og:audio``), and the name is resolved again later (DNS rebinding), so the address checked is not the
address used. Here every connection of a download goes through :meth:`Fetch.create_connection`: the
host is resolved once, **every** address is checked (:func:`check_address`), and the socket connects to
that checked address itself; the name is never resolved again for that connection (TLS still checks
the certificate against the name). Each redirect hop and each derived URL is a new connection and is
checked the same way; nothing is sent to an address before it passes.

**Deadlines and cancellation**. A per-read timeout does not bound a server that sends one byte just
before each timeout, and a blocked read cannot be interrupted from another thread. Sockets made here
wait in short slices (:data:`SLICE_S`) and give up when the fetch's total deadline passes or its cancel
event is set, so a download ends within a slice of either.

Addresses that embed an IPv4 address (IPv4-mapped ``::ffff:0:0/96``, 6to4 ``2002::/16``, Teredo,
NAT64 ``64:ff9b::/96``, IPv4-compatible ``::/96``) are judged by the embedded address too, since a
relay or a dual-stack socket delivers them there.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import select
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Longest single wait of a guarded socket: how soon a cancel or the total deadline is noticed.
SLICE_S = 0.25

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class AddressRefused(OSError):
    """The URL's host is (or a redirect or derived URL leads to) an address the service must not contact."""


class FetchTimeout(TimeoutError):
    """The download ran past its total time limit."""


class FetchCancelled(OSError):
    """The download was cancelled (its request timed out or the process is stopping)."""


class BadUrl(ValueError):
    """A URL that is malformed: unparsable host or port, credentials, spaces, backslashes."""


# ------------------------------------------------------------------------------------- addresses


def embedded_ipv4(addr: Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo server and client, NAT64,
    IPv4-compatible); empty for IPv4 and for plain IPv6 addresses."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return []
    out: list[ipaddress.IPv4Address] = []
    if addr.ipv4_mapped is not None:
        out.append(addr.ipv4_mapped)
    if addr.sixtofour is not None:
        out.append(addr.sixtofour)
    if addr.teredo is not None:
        out.extend(addr.teredo)
    if any(addr in net for net in _NAT64) or (addr in _IPV4_COMPATIBLE and int(addr) > 1):
        out.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return out


def _kind(addr: Address) -> str | None:
    """Why an address is refused, or None for a public unicast address."""
    for name in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(addr, f"is_{name}"):
            return name.replace("_", "-")
    if not addr.is_global:  # shared address space 100.64/10 and other non-global ranges
        return "non-global"
    return None


def _allowed(addr: Address, allowed: Sequence[Network]) -> bool:
    return any(addr.version == net.version and addr in net for net in allowed)


def check_address(addr: Address, allowed: Sequence[Network] = ()) -> None:
    """Raise :class:`AddressRefused` unless ``addr`` is public or inside an allowed network.

    An address with an embedded IPv4 address passes only if that address is public: the allowed
    networks match addresses as written, never through an embedding."""
    if _allowed(addr, allowed):
        return
    for v4 in embedded_ipv4(addr):
        kind = _kind(v4)
        if kind is not None:
            raise AddressRefused(f"address {addr} embeds {v4}, which is {kind}; fetching from it is not allowed")
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return  # ::ffff:a.b.c.d is reserved as IPv6 yet reaches a.b.c.d, judged above
    kind = _kind(addr)
    if kind is not None:
        raise AddressRefused(f"address {addr} is {kind}; fetching from it is not allowed")


def resolve(host: str, port: int | None) -> list[tuple[Any, ...]]:
    """``getaddrinfo`` for a TCP connection, with one-line errors."""
    if not host:
        raise AddressRefused("URL has no host")
    try:
        infos = socket.getaddrinfo(host, port or 80, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OSError(f"cannot resolve host {host!r} ({exc})") from None
    if not infos:
        raise OSError(f"host {host!r} has no address")
    return infos


def _address_of(info: tuple[Any, ...]) -> Address:
    return ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])  # drop an IPv6 zone id


def check_host(host: str, port: int | None, allowed: Sequence[Network] = ()) -> list[Address]:
    """Resolve ``host`` and check every address it resolves to; returns them.

    Only a quick answer for callers: the guard that holds is the one at connect time."""
    addrs = [_address_of(info) for info in resolve(host, port)]
    for addr in addrs:
        check_address(addr, allowed)
    return addrs


def parse_url(url: str, *, credentials: bool = False) -> urllib.parse.SplitResult:
    """Split an http(s) URL, refusing what HTTP libraries disagree on (:class:`BadUrl`).

    A backslash, whitespace or a control character makes one parser read another host than the next
    (``http://127.0.0.1:9\\@127.0.0.2/``). ``user:pass@`` is refused unless ``credentials``: a
    service has no business sending credentials on behalf of a caller (the CLI user may)."""
    if any(c in url for c in "\\ \t\r\n") or any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise BadUrl("malformed URL: it contains a backslash, a space or a control character")
    try:
        p = urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise BadUrl(f"malformed URL ({exc})") from None
    if p.scheme.lower() not in ("http", "https"):
        raise BadUrl(f"unsupported URL scheme {p.scheme!r}: only http and https are allowed")
    if not p.netloc or not p.hostname:
        raise BadUrl("URL has no host")
    if "@" in p.netloc and not credentials:
        raise BadUrl("malformed URL: user names or passwords in URLs are not accepted")
    try:
        p.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise BadUrl("malformed URL: invalid port") from None
    return p


def check_url(url: str, allowed: Sequence[Network] = ()) -> None:
    """Check the syntax, scheme and host of one URL (no traffic but DNS)."""
    p = parse_url(url)
    check_host(p.hostname or "", p.port, allowed)


# ----------------------------------------------------------------------------------------- fetch


class Fetch:
    """One download's connection policy: address guard (``allowed`` networks; None = any address),
    per-operation and total time limits, and a cancel event. Thread-safe; one per download."""

    def __init__(self, *, allowed: Sequence[Network] | None = None, read_timeout_s: float = 30.0,
                 total_timeout_s: float | None = None, cancel: threading.Event | None = None) -> None:
        self.allowed = None if allowed is None else tuple(allowed)
        self.read_timeout_s = float(read_timeout_s)
        self.total_timeout_s = total_timeout_s
        self.deadline = None if not total_timeout_s else time.monotonic() + float(total_timeout_s)
        self.cancel = cancel or threading.Event()
        self.refused: AddressRefused | None = None  # the first refusal, reported over later errors
        self.expired = False
        self.ssl_socket_class = type("FetchSSLSocket", (_FetchSSLSocket,), {"_fetch": self})

    # ------------------------------------------------------------------------------ time slices

    def wait_slice(self, started: float, limit_s: float) -> float:
        """How long the next wait may be, or raise when cancelled, past the total deadline, or past
        ``limit_s`` since ``started`` (the per-operation timeout)."""
        if self.cancel.is_set():
            raise FetchCancelled("download cancelled")
        now = time.monotonic()
        left = float("inf")
        if self.deadline is not None:
            left = self.deadline - now
            if left <= 0:
                self.expired = True
                raise FetchTimeout(f"download took longer than the {self.total_timeout_s:g} s limit")
        op_left = started + limit_s - now
        if op_left <= 0:
            raise TimeoutError("timed out")
        return max(0.001, min(SLICE_S, op_left, left))

    def io(self, sock: socket.socket, op: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking socket read in slices until it returns, checking the limits between."""
        started = time.monotonic()
        while True:
            sock.settimeout(self.wait_slice(started, self.read_timeout_s))
            try:
                return op(*args)
            except TimeoutError:  # socket.timeout: a slice ended with no data; wait_slice decides
                continue

    def op_timeout(self) -> float:
        """A plain timeout for one send: the per-operation limit, cut by the total deadline."""
        t = self.read_timeout_s
        if self.deadline is not None:
            t = min(t, self.deadline - time.monotonic())
        if self.cancel.is_set():
            raise FetchCancelled("download cancelled")
        if t <= 0:
            self.expired = True
            raise FetchTimeout(f"download took longer than the {self.total_timeout_s:g} s limit")
        return t

    # -------------------------------------------------------------------------------- connecting

    def create_connection(self, address: tuple[str, int], timeout: Any = None,
                          source_address: tuple[str, int] | None = None) -> socket.socket:
        """``socket.create_connection`` with the guard: resolve once, check every address, connect
        to a checked address; the socket keeps this fetch's limits for every read."""
        host, port = address[0], address[1]
        self.wait_slice(time.monotonic(), self.read_timeout_s)
        infos = resolve(host, port)
        if self.allowed is not None:
            for info in infos:
                try:
                    check_address(_address_of(info), self.allowed)
                except AddressRefused as exc:
                    if self.refused is None:
                        self.refused = exc
                    raise
        err: OSError | None = None
        for family, type_, proto, _, sockaddr in infos:
            sock = _FetchSocket(family, type_, proto)
            sock._fetch = self
            try:
                if source_address is not None:
                    sock.bind(source_address)
                self._connect(sock, sockaddr)
                sock.settimeout(self.op_timeout())
                return sock
            except (FetchTimeout, FetchCancelled):
                sock.close()
                raise
            except OSError as exc:
                sock.close()
                err = exc
        assert err is not None
        raise err

    def _connect(self, sock: socket.socket, sockaddr: Any) -> None:
        started = time.monotonic()
        sock.setblocking(False)
        code = sock.connect_ex(sockaddr)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            raise OSError(code, os.strerror(code))
        if code:
            poller = select.poll()  # not select.select: a busy server has descriptors past 1024
            poller.register(sock, select.POLLOUT)
            while not poller.poll(self.wait_slice(started, self.read_timeout_s) * 1000):
                pass
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))

    def ssl_context(self, ctx: ssl.SSLContext) -> ssl.SSLContext:
        """Make ``ctx`` wrap sockets in a class that keeps this fetch's limits."""
        ctx.sslsocket_class = self.ssl_socket_class
        return ctx


class _Paced:
    """Reads in slices through :meth:`Fetch.io`; sends bounded by :meth:`Fetch.op_timeout`."""

    _fetch: Fetch

    def recv_into(self, *args: Any) -> int:
        return self._fetch.io(self, super().recv_into, *args)  # type: ignore[misc,arg-type]

    def recv(self, *args: Any) -> bytes:
        return self._fetch.io(self, super().recv, *args)  # type: ignore[misc,arg-type]

    def sendall(self, *args: Any) -> None:
        self.settimeout(self._fetch.op_timeout())  # type: ignore[attr-defined]
        return super().sendall(*args)  # type: ignore[misc]


class _FetchSocket(_Paced, socket.socket):
    pass


class _FetchSSLSocket(_Paced, ssl.SSLSocket):
    pass
