"""robots.txt (RFC 9309) via protego, fetched once per host and cached; X-Robots-Tag opt-outs for images."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable

from protego import Protego

from webclip.fetch import Fetcher, host_key, is_transient
from webclip.netguard import parse

ALLOW_ALL = Protego.parse("")
DISALLOW_ALL = Protego.parse("User-agent: *\nDisallow: /\n")
MAX_AGE = 86400.0  # RFC 9309 2.4: a cached robots.txt is used for at most 24 hours
PARSE_LIMIT = 500 * 1024  # RFC 9309 2.5: at least 500 KiB are parsed; what follows is ignored (as Google does)
# Directives that forbid using an image (img2dataset drops these by default too, with noindex).
IMAGE_OPT_OUT_TOKENS = ("noimageindex", "noai", "noimageai")
# X-Robots-Tag directives that carry a value after a colon; any other "name:" prefix names a user agent.
VALUED_DIRECTIVES = frozenset({"max-snippet", "max-image-preview", "max-video-preview", "unavailable_after"})
ALIASES = {"none": ("noindex", "nofollow")}  # Google's robots meta / X-Robots-Tag rules: none = noindex, nofollow


def robots_url(url: str) -> str:
    """``scheme://host[:port]/robots.txt`` of the host the request for ``url`` goes to (urllib3's reading)."""
    return _locate(url)[0]


def _locate(url: str) -> tuple[str, str]:
    """(robots.txt URL, ``url`` as the request goes out: what the rules are matched on); ValueError if not http(s).

    Read with the parser that sends the request, so a URL cannot name one host to robots.txt and go to another.
    """
    u = parse(url)
    if u.scheme not in ("http", "https"):
        raise ValueError(f"no robots.txt for {url!r}")
    origin = f"{u.scheme}://{host_key(u)}"
    return f"{origin}/robots.txt", f"{origin}{u.request_uri}"


def robots_outcome(status: int, body: bytes, error: str | None) -> Protego | None:
    """RFC 9309 2.3.1: 2xx parsed; 4xx, or redirects past the limit, allow all; 429, 5xx or a transient
    network failure is "unreachable" (None: assume disallow for this attempt only); any other failure
    (a refused address, a garbled answer) disallows all."""
    if error is None and 200 <= status < 300:  # utf-8-sig: a leading BOM is no part of the first line
        return Protego.parse(body.decode("utf-8-sig", errors="replace"))
    if 400 <= status < 500 and status != 429:  # the status decides, whatever became of the body
        return ALLOW_ALL
    if error in ("too_many_redirects", "redirect_loop"):
        return ALLOW_ALL
    if (error is None and (status == 429 or status >= 500)) or is_transient(error):
        return None
    return DISALLOW_ALL


def parse_robots(status: int, body: bytes, error: str | None) -> Protego:
    """The rules to apply now: unreachable robots.txt reads as disallow all."""
    rules = robots_outcome(status, body, error)
    return DISALLOW_ALL if rules is None else rules


class RobotsCache:
    """One parsed robots.txt per host, fetched on first use, thread-safe.

    A fetched robots.txt is kept for ``MAX_AGE``; an unreachable one only for ``retry_interval`` seconds
    (default ``FetchConfig.robots_retry_interval``), then fetched again on the next call. A Crawl-delay is
    capped at ``FetchConfig.max_crawl_delay``: the host is then crawled at that capped pace.
    """

    def __init__(self, fetcher: Fetcher, agent: str = "webclip", retry_interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.fetcher = fetcher
        self.agent = agent
        self.retry_interval = fetcher.cfg.robots_retry_interval if retry_interval is None else retry_interval
        self.clock = clock
        self.lock = threading.Lock()
        self.host_locks: dict[str, threading.Lock] = {}
        self.cache: dict[str, tuple[Protego | None, float]] = {}  # robots URL -> (rules or unreachable, expiry)

    def _entry(self, url: str) -> Protego | None:
        """The parsed robots.txt for ``url``'s host, or None while it is unreachable."""
        key = robots_url(url)
        with self.lock:
            entry = self.cache.get(key)
            if entry is not None and entry[1] > self.clock():
                return entry[0]
            host_lock = self.host_locks.setdefault(key, threading.Lock())
        with host_lock:
            entry = self.cache.get(key)
            if entry is None or entry[1] <= self.clock():
                r = self.fetcher.get(key, keep_first=PARSE_LIMIT)
                rules = robots_outcome(r.status, r.body, r.error)
                self._pace(url, rules)
                entry = (rules, self.clock() + (MAX_AGE if rules is not None else self.retry_interval))
                with self.lock:
                    self.cache[key] = entry
            return entry[0]

    def _pace(self, url: str, rules: Protego | None) -> None:
        delay = rules.crawl_delay(self.agent) if rules is not None else None
        if delay and math.isfinite(float(delay)) and float(delay) > 0:
            capped = min(float(delay), self.fetcher.cfg.max_crawl_delay)
            self.fetcher.pacer.set_delay(host_key(url), capped)

    def rules(self, url: str) -> Protego:
        """The parsed robots.txt for ``url``'s host (disallow all while it is unreachable)."""
        rules = self._entry(url)
        return DISALLOW_ALL if rules is None else rules

    def check(self, url: str) -> str | None:
        """None if our agent may fetch ``url``, else ``robots_disallowed`` or ``robots_unreachable`` (transient).

        A URL too malformed to name its robots.txt is let through: the fetch itself then names the fault.
        """
        try:
            rules = self._entry(url)
            if rules is None:
                return "robots_unreachable"
            return None if rules.can_fetch(_locate(url)[1], self.agent) else "robots_disallowed"
        except ValueError:
            return None

    def allowed(self, url: str) -> bool:
        """Whether our agent may fetch ``url`` now."""
        return self.check(url) is None


def xrobots_forbids(header_value: str | None, tokens: Iterable[str] = IMAGE_OPT_OUT_TOKENS,
                    agent: str = "webclip") -> str | None:
    """The first directive of an X-Robots-Tag value that is in ``tokens`` and applies to ``agent``, else None.

    Grammar (Google's X-Robots-Tag, as img2dataset reads it): header lines (joined by "\\n") of comma-separated
    directives; ``name: directives`` scopes the rest of that line to user agent ``name`` (case-insensitive)
    unless ``name`` is a valued directive such as ``max-snippet``; unscoped (or ``*:``) directives apply to
    every agent. Returns the matching directive, lowercased (``noimageindex``), for the caller's drop reason.
    """
    if not header_value:
        return None
    wanted = {t.lower() for t in tokens}
    me = agent.lower()
    for line in header_value.split("\n"):
        scope = None
        for element in line.split(","):
            name, colon, rest = element.partition(":")
            name = name.strip().lower()
            if colon and name and name not in VALUED_DIRECTIVES and " " not in name:
                scope, element = name, rest
            for word in element.lower().split():
                for directive in ALIASES.get(word, (word,)):
                    if directive in wanted and scope in (None, "*", me):
                        return directive
    return None
