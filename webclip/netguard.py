"""Refuse URLs that resolve to private, loopback, link-local or multicast addresses."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


class Refused(Exception):
    """A URL the guard will not fetch; ``reason`` is a short drop-reason name."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class AllowRule:
    """One ``--allow-private`` entry: a host with optional port, or a CIDR network."""

    host: str | None = None
    port: int | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None

    @classmethod
    def parse(cls, text: str) -> AllowRule:
        """Parse ``HOST``, ``HOST:PORT``, ``[V6]:PORT`` or ``CIDR``."""
        text = text.strip()
        if "/" in text:
            return cls(network=ipaddress.ip_network(text, strict=False))
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            return cls(host=host.lower(), port=int(rest[1:]) if rest.startswith(":") else None)
        if text.count(":") == 1:
            host, port = text.split(":")
            return cls(host=host.lower(), port=int(port))
        return cls(host=text.lower())

    def allows(self, host: str, port: int, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether this rule lifts the guard for (host, port, resolved address)."""
        if self.network is not None:
            return addr in self.network
        if self.port is not None and self.port != port:
            return False
        return self.host in (host.lower(), str(addr))


def _is_private(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_multicast or addr.is_reserved or addr.is_unspecified


class AddressGuard:
    """Checks a URL's scheme and every address its host resolves to."""

    def __init__(self, allow: list[str] | tuple[str, ...] = ()):
        self.rules = [AllowRule.parse(a) for a in allow]

    def check(self, url: str) -> None:
        """Raise Refused unless ``url`` is http(s) and resolves only to allowed addresses."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise Refused("bad_scheme", url)
        host = parts.hostname
        if not host:
            raise Refused("bad_url", url)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as e:
            raise Refused("bad_url", url) from e
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as e:
            raise Refused("dns_error", host) from e
        for info in infos:
            addr = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if _is_private(addr) and not any(r.allows(host, port, addr) for r in self.rules):
                raise Refused("private_address", f"{host} -> {addr}")
