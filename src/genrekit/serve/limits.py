"""Limits of the web service, kept in one plain dataclass so the CLI, tests and benchmarks set them
the same way and the page can show them (``GET /api/config``)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass, field
from typing import Any

MB = 1024 * 1024


@dataclass(frozen=True)
class ServeLimits:
    """Every bound the service enforces; each one, when hit, answers a 4xx/504 JSON ``detail``.

    - ``max_upload_bytes``: request body of an upload (413 when over, checked while bytes arrive,
      so a client that lies about or omits Content-Length is cut off too).
    - ``max_duration_s``: audio length of an upload or a downloaded URL (422).
    - ``max_in_flight``: requests decoding/downloading/predicting at once; inference is CPU-bound, so
      more than the core count only adds latency.
    - ``max_queue`` and ``queue_timeout_s``: how many more requests may wait for a slot and for how
      long; beyond either the answer is 429 with ``Retry-After``.
    - ``upload_timeout_s``: how long a client may take to send its request body (408). Bodies are
      read *before* a slot is taken, so a slow client holds a connection, never a slot.
    - ``max_receiving``: request bodies arriving at once (429 beyond); with the queue and the slots
      it bounds the uploads on disk to ``max_receiving + max_queue + max_in_flight``.
    - ``request_timeout_s``: from the slot being granted to the answer (504); a URL download is
      cancelled then (its total deadline is what is left of this), and its slot freed within a
      fraction of a second.
    - ``allow_urls``: ``{"url": ...}`` requests are refused (403) unless set.
    - ``allowed_networks``: address ranges a URL may resolve to even though they are loopback,
      private, link-local, multicast or reserved (e.g. ``"127.0.0.1"``, ``"10.0.0.0/8"``).
    - ``server_names``: host names the server answers to besides IP addresses and ``localhost``
      (the Host check against DNS rebinding).
    - ``allowed_origins``: web origins (``"https://example.org"``, or ``"*"``) whose pages may POST
      here; other cross-origin POSTs get 403.
    """

    max_upload_bytes: int = 50 * MB
    max_duration_s: float = 20 * 60.0
    max_in_flight: int = 2
    max_queue: int = 32
    queue_timeout_s: float = 30.0
    request_timeout_s: float = 120.0
    upload_timeout_s: float = 60.0
    max_receiving: int = 16
    allow_urls: bool = False
    allowed_networks: tuple[str, ...] = field(default_factory=tuple)
    server_names: tuple[str, ...] = field(default_factory=tuple)
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.max_upload_bytes <= 0 or self.max_duration_s <= 0:
            raise ValueError("max_upload_bytes and max_duration_s must be positive")
        if self.max_in_flight < 1 or self.max_queue < 0 or self.max_receiving < 1:
            raise ValueError("max_in_flight and max_receiving must be >= 1 and max_queue >= 0")
        if self.queue_timeout_s < 0 or self.request_timeout_s <= 0 or self.upload_timeout_s <= 0:
            raise ValueError("queue_timeout_s must be >= 0, request_timeout_s and upload_timeout_s > 0")
        for origin in self.allowed_origins:
            if origin != "*" and not re.fullmatch(r"(https?://[^/\s]+|null)/?", origin, re.IGNORECASE):
                raise ValueError(f"not a web origin (scheme://host[:port]): {origin!r}")
        for net in self.allowed_networks:
            parse_network(net)  # fail at start-up, not on the first URL

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [parse_network(n) for n in self.allowed_networks]

    def public(self) -> dict[str, Any]:
        """What the page may know (shown next to the upload box); no network allow-list."""
        d = asdict(self)
        for private in ("allowed_networks", "server_names", "allowed_origins"):
            d.pop(private)
        return d


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """``"127.0.0.1"`` or ``"10.0.0.0/8"`` or ``"::1"`` as a network; ``"localhost"`` means loopback."""
    t = text.strip()
    if t.lower() == "localhost":
        t = "127.0.0.0/8"
    try:
        return ipaddress.ip_network(t, strict=False)
    except ValueError:
        raise ValueError(f"not an IP address or network: {text!r}") from None
