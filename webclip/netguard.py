"""Refuse URLs whose host is not a globally routable address; hand back exactly the addresses checked.

A URL is parsed once (urllib3's parser: the one whose request goes out) and its host resolved once; the
fetcher then connects to one of the checked addresses and never resolves the name again, so a DNS answer
that changes between check and connect (rebinding) cannot reach an address the check did not see.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass

from urllib3.exceptions import LocationParseError
from urllib3.util import Url, parse_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

# Address blocks the IANA IPv4 and IPv6 Special-Purpose Address Registries mark "not globally reachable"
# (or deprecated), plus multicast. Python's ``is_global`` is consulted too; this table is the floor whatever
# Python's own table holds. Global exceptions inside these blocks (PCP/TURN anycast 192.0.0.9-10, ORCHIDv2,
# AMT, 2001:1::1-2) are refused with their block: no website lives there.
NON_GLOBAL = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
    "::/96", "::1/128", "64:ff9b:1::/48", "100::/64", "100:0:0:1::/64", "2001::/23", "2001:db8::/32",
    "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
))


# IPv6 space that can hold a website: the global unicast block IANA allocates from (IANA IPv6 Address Space), and
# the NAT64 well-known prefix (its IPv4 checked unwrapped). The rest is reserved by the IETF, e.g. ::ffff:0:a.b.c.d
# (IPv4-translated, SIIT), which Python's ``is_global`` calls global.
ALLOCATED_V6 = tuple(ipaddress.IPv6Network(n) for n in ("2000::/3", "64:ff9b::/96"))


@functools.lru_cache(maxsize=4096)
def parse(url: str) -> Url:
    """urllib3's reading of a URL, the one whose request goes out; cached: pacing, robots.txt and the guard share it."""
    return parse_url(url)


def _v4(packed: bytes) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(packed)


# IPv6 forms that carry an IPv4 address the traffic ends up at: (block, the embedded IPv4 addresses).
EMBEDDED_V4: tuple[tuple[ipaddress.IPv6Network, Callable[[bytes], list[ipaddress.IPv4Address]]], ...] = (
    (ipaddress.IPv6Network("64:ff9b::/96"), lambda b: [_v4(b[12:])]),  # NAT64 well-known prefix (RFC 6052)
    (ipaddress.IPv6Network("64:ff9b:1::/48"), lambda b: [_v4(b[6:8] + b[9:11])]),  # local-use NAT64 (RFC 8215)
    (ipaddress.IPv6Network("2002::/16"), lambda b: [_v4(b[2:6])]),  # 6to4 (RFC 3056)
    (ipaddress.IPv6Network("2001::/32"), lambda b: [_v4(b[4:8]), _v4(bytes(x ^ 0xFF for x in b[12:]))]),  # Teredo
)


def unwrap(addr: IPAddress) -> list[IPAddress]:
    """The address itself plus every IPv4 address an IPv6 transition form wraps (an IPv4-mapped one: the IPv4 only)."""
    if isinstance(addr, ipaddress.IPv4Address):
        return [addr]
    if addr.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d on the wire
        return [addr.ipv4_mapped]
    packed = addr.packed
    inner = [v4 for net, extract in EMBEDDED_V4 if addr in net for v4 in extract(packed)]
    return [addr, *inner]


@functools.lru_cache(maxsize=65536)
def is_public(text: str) -> bool:
    """Whether an address (text, optional %scope) and every address it wraps are globally routable."""
    addr = ipaddress.ip_address(text.split("%", 1)[0])
    return all(_routable(a) for a in unwrap(addr))


def _routable(a: IPAddress) -> bool:
    if isinstance(a, ipaddress.IPv6Address) and not any(a in net for net in ALLOCATED_V6):
        return False
    return a.is_global and not any(a in net for net in NON_GLOBAL)


@functools.lru_cache(maxsize=65536)
def allowed_by(rules: tuple[AllowRule, ...], host: str, port: int, text: str) -> bool:
    """Whether an ``--allow-private`` rule lifts the guard for this host, port and address (IPv4-mapped: its IPv4)."""
    addr = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(r.allows(host, port, addr) for r in rules)


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

    def allows(self, host: str, port: int, addr: IPAddress) -> bool:
        """Whether this rule lifts the guard for (host, port, resolved address)."""
        if self.network is not None:
            return addr in self.network
        if self.port is not None and self.port != port:
            return False
        return self.host in (host.lower(), str(addr))


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect and what to send."""

    scheme: str
    host: str  # normalised name or IP literal, no brackets: TLS SNI and certificate name
    port: int
    host_header: str  # host[:port] as the URL wrote it
    path: str  # the request target: path and query, percent-encoded
    addresses: tuple[str, ...]  # every address the host resolved to, each one checked


def system_resolve(host: str, port: int) -> list[str]:
    """The host's TCP addresses in the system resolver's order (one lookup)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


NO_SUCH_HOST = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


class AddressGuard:
    """Parses a URL once, resolves its host once (``resolve``: the hook tests fake) and checks every address."""

    def __init__(self, allow: list[str] | tuple[str, ...] = (), resolve: Resolver = system_resolve):
        self.rules = tuple(AllowRule.parse(a) for a in allow)
        self.resolve = resolve

    def target(self, url: str) -> Target:
        """The checked target of ``url``; raises Refused unless http(s) and every address is allowed."""
        try:
            u = parse(url)
        except (LocationParseError, ValueError, UnicodeError) as e:
            raise Refused("bad_url", url) from e
        if u.scheme not in ("http", "https"):
            raise Refused("bad_scheme", url)
        if not u.host or u.port == 0:
            raise Refused("bad_url", url)
        host = u.host.strip("[]")
        port = u.port or (443 if u.scheme == "https" else 80)
        addresses = tuple(self._lookup(host, port))
        for text in addresses:
            if not self._public(text) and not allowed_by(self.rules, host, port, text):
                raise Refused("private_address", f"{host} -> {text}")
        host_header = u.host if u.port is None else f"{u.host}:{u.port}"
        return Target(u.scheme, host, port, host_header, u.request_uri, addresses)

    def check(self, url: str) -> None:
        """Raise Refused unless ``url`` is http(s) and resolves only to allowed addresses."""
        self.target(url)

    def _lookup(self, host: str, port: int) -> list[str]:
        try:
            addresses = self.resolve(host, port)
        except socket.gaierror as e:  # a name that does not exist is final; a failing resolver is not
            raise Refused("unknown_host" if e.errno in NO_SUCH_HOST else "dns_error", host) from e
        except (UnicodeError, ValueError) as e:  # a label too long for IDNA, a NUL in the name
            raise Refused("bad_url", host) from e
        if not addresses:
            raise Refused("unknown_host", host)
        return addresses

    @staticmethod
    def _public(text: str) -> bool:
        try:
            return is_public(text)
        except ValueError as e:  # a resolver answering something that is not an address
            raise Refused("dns_error", text) from e
