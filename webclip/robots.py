"""robots.txt (RFC 9309) via protego, fetched once per host and cached."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

from protego import Protego

from webclip.fetch import Fetcher

ALLOW_ALL = Protego.parse("")
DISALLOW_ALL = Protego.parse("User-agent: *\nDisallow: /\n")


def robots_url(url: str) -> str:
    """``scheme://host[:port]/robots.txt`` for a URL."""
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}/robots.txt"


def parse_robots(status: int, body: bytes, error: str | None) -> Protego:
    """RFC 9309: 2xx parsed, 4xx allow all, 5xx or unreachable disallow all."""
    if error is None and 200 <= status < 300:
        return Protego.parse(body.decode("utf-8", errors="replace"))
    if error is None and 400 <= status < 500:
        return ALLOW_ALL
    return DISALLOW_ALL


class RobotsCache:
    """One parsed robots.txt per host, fetched on first use, thread-safe."""

    def __init__(self, fetcher: Fetcher, agent: str = "webclip"):
        self.fetcher = fetcher
        self.agent = agent
        self.lock = threading.Lock()
        self.host_locks: dict[str, threading.Lock] = {}
        self.cache: dict[str, Protego] = {}

    def rules(self, url: str) -> Protego:
        """The parsed robots.txt for ``url``'s host."""
        key = robots_url(url)
        with self.lock:
            if key in self.cache:
                return self.cache[key]
            host_lock = self.host_locks.setdefault(key, threading.Lock())
        with host_lock:
            if key not in self.cache:
                r = self.fetcher.get(key)
                rules = parse_robots(r.status, r.body, r.error)
                delay = rules.crawl_delay(self.agent)
                if delay:
                    self.fetcher.pacer.set_delay(urlsplit(url).netloc.lower(), float(delay))
                with self.lock:
                    self.cache[key] = rules
            return self.cache[key]

    def allowed(self, url: str) -> bool:
        """Whether our agent may fetch ``url``."""
        return self.rules(url).can_fetch(url, self.agent)
