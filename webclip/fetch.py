"""A polite HTTP fetcher: total deadline, byte cap, guarded redirects, retries, per-host pacing.

``Fetcher.get`` never raises: whatever a server sends (or a bug does) ends as a ``Response`` whose ``error`` is
a short drop-reason name, which callers prefix with their step (``download/timeout``). ``TRANSIENT_ERRORS``
names the ones worth retrying later in the run or on a rerun (``is_transient``).
"""

from __future__ import annotations

import datetime
import email.utils
import http.client
import itertools
import logging
import math
import random
import socket
import ssl
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    LocationValueError,
    NewConnectionError,
    ProtocolError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.response import HTTPResponse
from urllib3.util import Url, parse_url

from webclip import __version__
from webclip.netguard import AddressGuard, Refused, Target, parse

DEFAULT_USER_AGENT = f"webclip/{__version__} (+https://github.com/webclip/webclip; dataset research crawler)"
RETRY_STATUSES = (429, 503)
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
DEFAULT_PORTS = {"http": 80, "https": 443}
DECODABLE = frozenset(HTTPResponse.CONTENT_DECODERS)  # content codings urllib3 undoes (br/zstd when installed)
# Failures that may go away by themselves: retried later in the run and on a rerun, never sealed as final.
TRANSIENT_ERRORS = frozenset({"timeout", "connection_error", "dns_error", "http_429", "robots_unreachable",
                              *(f"http_{status}" for status in range(500, 600))})
LOG_FIRST = 5  # unexpected exceptions logged with a traceback; the rest only counted as fetch_error

log = logging.getLogger(__name__)
# urllib3 logs a traceback for every answer with malformed header lines and reads on; on the open web that is
# noise, not news (the answer is judged by what could be read).
logging.getLogger("urllib3.connection").addFilter(lambda record: not record.getMessage().startswith("Failed to parse"))


def is_transient(reason: str | None) -> bool:
    """Whether a drop reason, bare (``timeout``) or step-prefixed (``download/http_503``), is transient."""
    return reason is not None and reason.rsplit("/", 1)[-1] in TRANSIENT_ERRORS


@dataclass
class FetchConfig:
    """Limits and manners of one fetcher."""

    user_agent: str = DEFAULT_USER_AGENT
    timeout: float = 10.0  # total deadline per attempt: connect + TLS + headers + body
    connect_timeout: float = 5.0
    max_bytes: int = 5_000_000  # counted after decoding: compression bombs stop here
    max_redirects: int = 5
    retries: int = 2
    backoff: float = 0.5
    max_retry_wait: float = 30.0
    per_host_delay: float = 1.0
    per_host_concurrency: int = 2
    allow_private: list[str] = field(default_factory=list)
    max_crawl_delay: float = 30.0  # a longer robots.txt Crawl-delay is cut to this: the host is crawled at this pace
    robots_retry_interval: float = 60.0  # an unreachable robots.txt is fetched again after this many seconds


@dataclass
class Response:
    """What a fetch returns: a final URL, status, headers and body, or a drop reason."""

    url: str
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)  # names lowercased; repeats joined (X-Robots-Tag by "\n")
    body: bytes = b""
    error: str | None = None  # a drop-reason name such as "timeout" or "too_large"
    redirects: int = 0

    @property
    def ok(self) -> bool:
        """A 2xx answer with its whole body."""
        return self.error is None and 200 <= self.status < 300


class HostPacer:
    """Per-host concurrency slots and a minimum delay between request starts to one host."""

    def __init__(self, delay: float, concurrency: int):
        self.delay = delay
        self.concurrency = concurrency
        self.lock = threading.Lock()
        self.next_start: dict[str, float] = defaultdict(float)
        self.sems: dict[str, threading.BoundedSemaphore] = {}
        self.delays: dict[str, float] = {}

    def set_delay(self, host: str, delay: float) -> None:
        """Use a host-specific delay (robots.txt Crawl-delay) if it is longer than the default."""
        with self.lock:
            self.delays[host] = max(self.delay, delay)

    def push_back(self, host: str, seconds: float) -> None:
        """Hold every request to ``host`` for ``seconds`` (Retry-After)."""
        with self.lock:
            self.next_start[host] = max(self.next_start[host], time.monotonic() + seconds)

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        """Hold one of the host's slots and wait for its turn to start a request."""
        with self.lock:
            sem = self.sems.setdefault(host, threading.BoundedSemaphore(self.concurrency))
        with sem:
            while True:
                with self.lock:
                    now = time.monotonic()
                    start = self.next_start[host]
                    if now >= start:
                        self.next_start[host] = now + self.delays.get(host, self.delay)
                        break
                time.sleep(min(start - now, 1.0))
            yield


def host_key(url: str | Url) -> str:
    """``host`` or ``host:port`` (a port other than the scheme's) as urllib3, which sends the request, reads it.

    The key of per-host pacing and of robots.txt: userinfo, case, an explicit default port or a backslash
    cannot make one host look like several, or like another one. Raises ValueError on an unparseable URL.
    """
    u = parse(url) if isinstance(url, str) else url
    host = u.host or ""
    return host if u.port in (None, DEFAULT_PORTS.get(u.scheme or "")) else f"{host}:{u.port}"


def retry_after_seconds(value: str | None, default: float) -> float:
    """Seconds a Retry-After header asks for (delay-seconds or HTTP date); ``default`` if absent or unreadable."""
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            if when.tzinfo is None:  # asctime form: HTTP-dates are GMT whatever the local zone (RFC 9110 5.6.7)
                when = when.replace(tzinfo=datetime.UTC)
            seconds = when.timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError, OSError):  # "soon", dates out of range
            return default
    return max(0.0, seconds) if not math.isnan(seconds) else default


def redirect_target(base: str, location: str | None) -> str | None:
    """The absolute URL a Location header points to, or None when it is missing or cannot be parsed."""
    if not location or not location.strip():
        return None
    with suppress(UnicodeError):  # http.client read the bytes as latin-1; on the web they are UTF-8 (else kept)
        location = location.encode("latin-1").decode("utf-8")
    try:
        target = urljoin(base, location.strip())
        urlsplit(target).port  # noqa: B018  (raises on a bad port or bracketed host)
        parse_url(target)
    except (ValueError, UnicodeError):  # urllib3's LocationParseError is a ValueError too
        return None
    return target


# The deadline of the request the current thread is running: every socket wait is cut to what is left of it.
_deadline = threading.local()


def _fit_to_deadline(sock: socket.socket) -> None:
    at = getattr(_deadline, "at", None)
    if at is not None:
        remaining = at - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("total deadline passed")
        sock.settimeout(remaining)


class _DeadlineSocket(socket.socket):
    """A TCP socket whose every send and receive waits no longer than the current request's total deadline."""

    __slots__ = ()

    def sendall(self, *args: Any, **kw: Any) -> None:
        _fit_to_deadline(self)
        super().sendall(*args, **kw)

    def recv_into(self, *args: Any, **kw: Any) -> int:
        _fit_to_deadline(self)
        return super().recv_into(*args, **kw)

    def recv(self, *args: Any, **kw: Any) -> bytes:
        _fit_to_deadline(self)
        return super().recv(*args, **kw)


class _DeadlineSSLSocket(ssl.SSLSocket):
    """A TLS socket with the same rule; the handshake gets what is left of the deadline as a whole."""

    def do_handshake(self, *args: Any, **kw: Any) -> None:
        _fit_to_deadline(self)  # CPython bounds the whole handshake by the socket timeout
        super().do_handshake(*args, **kw)

    def sendall(self, *args: Any, **kw: Any) -> None:
        _fit_to_deadline(self)
        super().sendall(*args, **kw)

    def recv_into(self, *args: Any, **kw: Any) -> int:
        _fit_to_deadline(self)
        return super().recv_into(*args, **kw)


class _CheckedAddressConnection(HTTPConnection):
    """Connects to the pool's host taken as an already checked IP literal: no name lookup, deadline sockets."""

    def _new_conn(self) -> socket.socket:
        address = self._dns_host.strip("[]")
        sock = _DeadlineSocket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
        try:
            for option in self.socket_options or ():
                sock.setsockopt(*option)
            at = getattr(_deadline, "at", None)
            timeout = self.timeout if isinstance(self.timeout, (int, float)) else None
            if at is not None:
                timeout = max(0.001, min(timeout or math.inf, at - time.monotonic()))
            sock.settimeout(timeout)
            sock.connect((address, self.port))
        except TimeoutError as e:
            sock.close()
            raise ConnectTimeoutError(self, f"connection to {address} timed out") from e
        except OSError as e:
            sock.close()
            raise NewConnectionError(self, f"failed to connect to {address}: {e}") from e
        return sock


class _CheckedAddressHTTPSConnection(_CheckedAddressConnection, HTTPSConnection):
    """The TLS twin: SNI and certificate name from the pool's ``server_hostname`` (the URL's host)."""


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedAddressConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedAddressHTTPSConnection


def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every connection: certifi's CA bundle, deadline-bound TLS sockets."""
    ctx = urllib3.util.ssl_.create_urllib3_context()
    ctx.load_verify_locations(certifi.where())  # the CA bundle requests uses, not whatever the system has
    ctx.sslsocket_class = _DeadlineSSLSocket
    return ctx


def _merge_headers(raw: Any) -> dict[str, str]:
    """Header names lowercased; a repeated header joined by ", ", X-Robots-Tag lines by "\\n" (agent scopes)."""
    headers: dict[str, str] = {}
    for name, value in raw.items():
        key = name.lower()
        if key in headers:
            headers[key] += ("\n" if key == "x-robots-tag" else ", ") + value
        else:
            headers[key] = value
    return headers


def _codings(value: str) -> list[str] | None:
    """The content codings a Content-Encoding value lists, in order, ``identity`` and empty elements dropped;
    None when one of them is not one we can undo (RFC 9110 8.4: the bytes are then not the content)."""
    codings = [c.strip().lower() for c in value.split(",")]
    codings = [c for c in codings if c not in ("", "identity")]
    return codings if all(c in DECODABLE for c in codings) else None


def _protocol_reason(e: ProtocolError) -> str:
    """A garbled answer (no status line, endless headers) is bad_response; a dropped connection is not."""
    cause = e.args[1] if len(e.args) > 1 else e.__cause__
    if isinstance(cause, TimeoutError):  # the deadline passed while the request was still being sent
        return "timeout"
    if isinstance(cause, http.client.HTTPException) and not isinstance(cause, http.client.RemoteDisconnected):
        return "bad_response"
    return "connection_error"


def _request_error(e: Exception) -> str | None:
    """The drop reason for an exception raised while sending a request and reading its headers."""
    reasons: tuple[tuple[type[BaseException], str | Callable[[Any], str]], ...] = (
        (NewConnectionError, "connection_error"),  # a subclass of the connect timeout: refused, unreachable
        (Urllib3Timeout, "timeout"), (TimeoutError, "timeout"),
        (SSLError, "connection_error"), (ProtocolError, _protocol_reason), (LocationValueError, "bad_url"),
        (HTTPError, "bad_response"), (http.client.HTTPException, "bad_response"), (OSError, "connection_error"),
    )
    for kind, reason in reasons:
        if isinstance(e, kind):
            return reason if isinstance(reason, str) else reason(e)
    return None


def _body_error(e: Exception) -> str | None:
    """The drop reason for an exception raised while reading a body."""
    for kind, reason in ((Urllib3Timeout, "timeout"), (TimeoutError, "timeout"), (DecodeError, "bad_encoding"),
                         (HTTPError, "connection_error"), (http.client.HTTPException, "connection_error"),
                         (OSError, "connection_error")):
        if isinstance(e, kind):
            return reason
    return None


class Fetcher:
    """Fetches URLs with every limit in ``FetchConfig``; thread-safe (one urllib3 pool manager shared)."""

    def __init__(self, cfg: FetchConfig, pacer: HostPacer | None = None):
        self.cfg = cfg
        self.guard = AddressGuard(cfg.allow_private)
        self.pacer = pacer or HostPacer(cfg.per_host_delay, cfg.per_host_concurrency)
        self.tls = tls_context()
        # urllib3 straight, not requests: a third of the CPU per request, and the body decoded as it streams
        # (gzip/deflate) so the byte cap bounds what we hold. Pools are keyed by (scheme, checked IP, port,
        # TLS name): connections go to the address the guard checked, never to a second lookup of the name.
        self.pool = urllib3.PoolManager(
            num_pools=256, maxsize=max(4, cfg.per_host_concurrency), block=False, retries=False, ssl_context=self.tls)
        self.pool.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        self.headers = {"User-Agent": cfg.user_agent, "Accept-Encoding": "gzip, deflate"}
        self.timeouts = urllib3.Timeout(connect=min(cfg.connect_timeout, cfg.timeout), read=cfg.timeout)
        self.unexpected = itertools.count(1)

    def get(self, url: str, check: Callable[[str], str | None] | None = None,
            keep_first: int | None = None) -> Response:
        """GET ``url`` following guarded redirects, retrying connection errors, 429 and 503; never raises.

        ``check(next_url)`` is asked before each redirect target is fetched; a reason it returns (say
        ``robots_disallowed``) stops the fetch with that error. ``keep_first`` reads only that many decoded
        bytes and returns them as the body (a parse limit, robots.txt's) instead of dropping more as too_large.
        """
        try:
            return self._follow(url, check, keep_first)
        except Exception:  # the fetch's one failure boundary: a bug or an unforeseen answer becomes a named drop
            if next(self.unexpected) <= LOG_FIRST:
                log.exception("fetch of %r raised; counted as fetch_error", url)
            return Response(url=url, error="fetch_error")

    def _follow(self, url: str, check: Callable[[str], str | None] | None, keep_first: int | None) -> Response:
        seen = {url}
        current = url
        for hop in range(self.cfg.max_redirects + 1):
            resp = self._get_with_retries(current, keep_first)
            resp.redirects = hop
            if resp.error or resp.status not in REDIRECT_STATUSES:
                return resp
            nxt = redirect_target(current, resp.headers.get("location"))
            if nxt is None:
                return Response(url=current, status=resp.status, error="bad_redirect", redirects=hop)
            error = "redirect_loop" if nxt in seen else check(nxt) if check is not None else None
            if error:
                return Response(url=nxt, status=resp.status, error=error, redirects=hop)
            seen.add(nxt)
            current = nxt
        return Response(url=current, error="too_many_redirects", redirects=self.cfg.max_redirects)

    def _get_with_retries(self, url: str, keep_first: int | None) -> Response:
        try:
            host = host_key(url)
        except ValueError:
            return Response(url=url, error="bad_url")
        attempt = 0
        while True:
            with self.pacer.slot(host):
                resp = self._get_once(url, keep_first)
            retryable = resp.error in ("connection_error",) or (resp.error is None and resp.status in RETRY_STATUSES)
            if not retryable or attempt >= self.cfg.retries:
                if resp.error is None and resp.status in RETRY_STATUSES:
                    resp.error = f"http_{resp.status}"
                return resp
            wait = self.cfg.backoff * 2**attempt * (1 + random.random())  # jitter: timing only, not data
            if resp.error is None:
                wait = max(wait, retry_after_seconds(resp.headers.get("retry-after"), wait))
                if wait > self.cfg.max_retry_wait:
                    resp.error = f"http_{resp.status}"
                    return resp
                self.pacer.push_back(host, wait)
            time.sleep(min(wait, self.cfg.max_retry_wait))
            attempt += 1

    def _get_once(self, url: str, keep_first: int | None = None) -> Response:
        """One request under a total deadline (connect, TLS, headers, body) and a byte cap."""
        try:
            target = self.guard.target(url)
        except Refused as e:
            return Response(url=url, error=e.reason)
        _deadline.at = time.monotonic() + self.cfg.timeout
        try:
            r, error = self._open(target)
            if r is None:
                return Response(url=url, error=error)
            headers = _merge_headers(r.headers)
            body, error = self._read_body(r, headers, keep_first)
            return Response(url=url, status=r.status, headers=headers, body=body if error is None else b"",
                            error=error)
        finally:
            _deadline.at = None

    def _open(self, target: Target) -> tuple[Any, str | None]:
        """Send the request to the first checked address that takes a connection; the response or a reason."""
        tls_name = {"server_hostname": target.host}  # TLS SNI and certificate name; part of every pool's key
        headers = {"Host": target.host_header, **self.headers}
        error: str | None = "connection_error"
        for address in target.addresses:
            try:
                host = f"[{address}]" if ":" in address else address  # urllib3 reads a zoned IPv6 only bracketed
                pool = self.pool.connection_from_host(host, target.port, target.scheme, pool_kwargs=tls_name)
                return pool.urlopen("GET", target.path, headers=headers, preload_content=False, decode_content=True,
                                    redirect=False, retries=False, assert_same_host=False,
                                    timeout=self.timeouts), None
            except Exception as e:
                error = _request_error(e)
                if error is None:
                    raise
                if not isinstance(e, ConnectTimeoutError) or time.monotonic() >= _deadline.at:
                    break  # only a failed connect moves on to the host's next address
        return None, error

    def _read_body(self, r: Any, headers: dict[str, str], keep_first: int | None) -> tuple[bytes, str | None]:
        """The decoded body, cut at ``max_bytes`` (or kept up to ``keep_first``) and the deadline; the connection
        is reused only when the body was read whole."""
        codings = _codings(headers.get("content-encoding", ""))
        if codings is None:
            r.close()
            return b"", "bad_encoding"
        declared = headers.get("content-length", "0").split(",")[0].strip()
        too_long = declared.isascii() and declared.isdigit() and int(declared) > self.cfg.max_bytes
        if too_long and not codings and keep_first is None:  # the declared size is the body's: refuse unread
            r.close()
            return b"", "too_large"
        r.headers.discard("content-encoding")
        if codings:  # what urllib3 undoes, read as the list it is (no OWS, no identity)
            r.headers["Content-Encoding"] = ", ".join(codings)
        cap = self.cfg.max_bytes if keep_first is None else keep_first
        chunks, size, error = [], 0, None
        try:
            while True:
                if time.monotonic() >= _deadline.at:
                    error = "timeout"
                    break
                chunk = r.read1(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > cap:  # counted after decoding: a gzip bomb stops here too
                    if keep_first is not None:
                        chunks.append(chunk[:len(chunk) - (size - cap)])
                        r.close()  # the rest is left unread: this connection cannot be reused
                        return b"".join(chunks), None
                    error = "too_large"
                    break
                chunks.append(chunk)
        except Exception as e:
            error = _body_error(e)
            if error is None:
                r.close()
                raise
        if error is not None:
            r.close()
            return b"", error
        r.release_conn()
        return b"".join(chunks), None
