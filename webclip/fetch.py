"""A polite HTTP fetcher: total deadline, byte cap, guarded redirects, retries, per-host pacing."""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
from urllib3.exceptions import (
    DecodeError,
    HTTPError,
    LocationValueError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from webclip import __version__
from webclip.netguard import AddressGuard, Refused

DEFAULT_USER_AGENT = f"webclip/{__version__} (+https://github.com/webclip/webclip; dataset research crawler)"
RETRY_STATUSES = (429, 503)


@dataclass
class FetchConfig:
    """Limits and manners of one fetcher."""

    user_agent: str = DEFAULT_USER_AGENT
    timeout: float = 10.0  # total deadline per attempt: connect + headers + body
    connect_timeout: float = 5.0
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    retries: int = 2
    backoff: float = 0.5
    max_retry_wait: float = 30.0
    per_host_delay: float = 1.0
    per_host_concurrency: int = 2
    allow_private: list[str] = field(default_factory=list)


@dataclass
class Response:
    """What a fetch returns: a final URL, status, headers and body, or a drop reason."""

    url: str
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
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


def retry_after_seconds(value: str | None, default: float) -> float:
    """Parse a Retry-After header (seconds or HTTP date)."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else default


class Fetcher:
    """Fetches URLs with every limit in ``FetchConfig``; thread-safe (one urllib3 pool manager shared)."""

    def __init__(self, cfg: FetchConfig, pacer: HostPacer | None = None):
        self.cfg = cfg
        self.guard = AddressGuard(cfg.allow_private)
        self.pacer = pacer or HostPacer(cfg.per_host_delay, cfg.per_host_concurrency)
        # urllib3 straight, not requests: a third of the CPU per request, and the body decoded as it streams
        # (gzip/deflate) so the byte cap bounds what we hold, compression bombs included.
        self.pool = urllib3.PoolManager(
            num_pools=256, maxsize=max(4, cfg.per_host_concurrency), block=False, retries=False,
            ca_certs=certifi.where(),  # the CA bundle requests uses, not whatever the system has
            headers={"User-Agent": cfg.user_agent, "Accept-Encoding": "gzip, deflate"})
        self.timeouts = urllib3.Timeout(connect=min(cfg.connect_timeout, cfg.timeout), read=cfg.timeout)

    def get(self, url: str) -> Response:
        """GET ``url`` following guarded redirects, retrying connection errors, 429 and 503."""
        seen = {url}
        current = url
        for hop in range(self.cfg.max_redirects + 1):
            resp = self._get_with_retries(current)
            resp.redirects = hop
            if resp.error or resp.status not in (301, 302, 303, 307, 308):
                return resp
            location = resp.headers.get("location")
            if not location:
                return Response(url=current, status=resp.status, error="bad_redirect", redirects=hop)
            current = urljoin(current, location)
            if current in seen:
                return Response(url=current, status=resp.status, error="redirect_loop", redirects=hop)
            seen.add(current)
        return Response(url=current, error="too_many_redirects", redirects=self.cfg.max_redirects)

    def _get_with_retries(self, url: str) -> Response:
        host = urlsplit(url).netloc.lower()
        attempt = 0
        while True:
            with self.pacer.slot(host):
                resp = self._get_once(url)
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

    def _get_once(self, url: str) -> Response:
        """One request with a total deadline and a byte cap; never raises for network trouble."""
        try:
            self.guard.check(url)
        except Refused as e:
            return Response(url=url, error=e.reason)
        deadline = time.monotonic() + self.cfg.timeout
        try:
            r = self.pool.request("GET", url, preload_content=False, decode_content=True, redirect=False,
                                  timeout=self.timeouts)
        except NewConnectionError:  # a subclass of urllib3's connect timeout: refused, unreachable, no DNS
            return Response(url=url, error="connection_error")
        except (Urllib3Timeout, TimeoutError):
            return Response(url=url, error="timeout")
        except (ProxyError, SSLError, ProtocolError, OSError):
            return Response(url=url, error="connection_error")
        except (LocationValueError, HTTPError, ValueError, UnicodeError):
            return Response(url=url, error="bad_url")
        headers = {k.lower(): v for k, v in r.headers.items()}
        status = r.status
        try:
            declared = int(headers.get("content-length", "0") or 0)
        except ValueError:
            declared = 0
        if declared > self.cfg.max_bytes and "content-encoding" not in headers:
            r.close()
            return Response(url=url, status=status, headers=headers, error="too_large")
        chunks, size, error = [], 0, None
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    error = "timeout"
                    break
                sock = _socket_of(r)
                if sock is not None:
                    sock.settimeout(max(0.01, remaining))
                chunk = r.read1(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.cfg.max_bytes:  # counted after decoding: a gzip bomb stops here too
                    error = "too_large"
                    break
                chunks.append(chunk)
        except (Urllib3Timeout, TimeoutError):
            error = "timeout"
        except DecodeError:
            error = "bad_encoding"
        except (HTTPError, OSError):  # protocol errors, resets and short reads mid-body
            error = "connection_error"
        if error is None and time.monotonic() > deadline:
            error = "timeout"
        if error is not None:
            r.close()
            return Response(url=url, status=status, headers=headers, error=error)
        r.release_conn()
        return Response(url=url, status=status, headers=headers, body=b"".join(chunks))


def _socket_of(r: Any) -> Any:
    """The socket under a urllib3 response, to shrink its timeout to the remaining deadline."""
    try:
        return r._fp.fp.raw._sock  # type: ignore[attr-defined]
    except AttributeError:
        return None
