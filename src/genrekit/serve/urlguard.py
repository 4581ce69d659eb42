"""Server-side request forgery guard for ``{"url": ...}`` requests.

A public genre service that fetches any URL would let anyone make it read ``http://127.0.0.1:...``,
``http://169.254.169.254/`` (cloud metadata) or hosts on its private network. Before anything is
downloaded, the URL's host is resolved with :func:`socket.getaddrinfo` and **every** address it
resolves to must be a public unicast address, unless it lies in one of the explicitly allowed
networks (``--allow-host``). Redirects are followed by a first request made here (stdlib urllib, a
``GET`` whose body is not read) that checks each hop's host the same way.

Residual risk, documented rather than hidden: yt-dlp then resolves the name again and makes its own
requests, so a hostile DNS server that answers a public address to us and a private one to yt-dlp
(DNS rebinding), or a site whose extractor fetches further URLs (e.g. a video page that points to a
media server), can still reach an address we did not check. Keep URL fetching off
(the default) on hosts with sensitive neighbours, or run the service in a network namespace/egress
firewall that blocks private ranges.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The URL's host is (or redirects to) an address the service must not contact."""


def _kind(addr: Address) -> str | None:
    """Why an address is refused, or None for a public unicast address."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return _kind(addr.ipv4_mapped)
    for name in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(addr, f"is_{name}"):
            return name.replace("_", "-")
    if not addr.is_global:  # shared address space 100.64/10 and other non-global ranges
        return "non-global"
    return None


def check_address(addr: Address, allowed: Sequence[Network] = ()) -> None:
    """Raise :class:`AddressRefused` unless ``addr`` is public or inside an allowed network."""
    if any(addr.version == net.version and addr in net for net in allowed):
        return
    kind = _kind(addr)
    if kind is not None:
        raise AddressRefused(f"address {addr} is {kind}; fetching from it is not allowed")


def check_host(host: str, port: int | None, allowed: Sequence[Network] = ()) -> list[Address]:
    """Resolve ``host`` and check every address it resolves to; returns them."""
    if not host:
        raise AddressRefused("URL has no host")
    try:
        infos = socket.getaddrinfo(host, port or 80, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"cannot resolve host {host!r} ({exc})") from None
    addrs: list[Address] = []
    for info in infos:
        ip = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        addr = ipaddress.ip_address(ip)
        check_address(addr, allowed)
        addrs.append(addr)
    if not addrs:
        raise AddressRefused(f"host {host!r} has no address")
    return addrs


def check_url(url: str, allowed: Sequence[Network] = ()) -> None:
    """Check the scheme and the host of one URL (no network traffic except DNS)."""
    p = urllib.parse.urlsplit(url)
    if p.scheme.lower() not in ("http", "https"):
        raise AddressRefused(f"unsupported URL scheme {p.scheme!r}: only http and https are allowed")
    try:
        port = p.port
    except ValueError:
        raise AddressRefused("URL has an invalid port") from None
    check_host(p.hostname or "", port, allowed)


class _CheckingRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, allowed: Sequence[Network]) -> None:
        self.allowed = allowed

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        check_url(newurl, self.allowed)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def check_redirects(url: str, allowed: Sequence[Network] = (), timeout_s: float = 10.0) -> str:
    """Follow ``url``'s redirects (checking every hop) and return the final URL.

    Only headers are read. Network errors are not ours to report: they return ``url`` unchanged and
    the downloader then gives its own, better message.
    """
    check_url(url, allowed)
    opener = urllib.request.build_opener(_CheckingRedirects(allowed))
    req = urllib.request.Request(url, headers={"User-Agent": "genrekit-serve", "Range": "bytes=0-0"})
    try:
        with opener.open(req, timeout=timeout_s) as resp:
            final = resp.geturl()
    except urllib.error.HTTPError as exc:
        final = exc.geturl() or url
    except (urllib.error.URLError, OSError, ValueError):
        return url
    check_url(final, allowed)
    return final
