"""URL rules of the crawl stage: scope, and resolution against a page's base."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from webclip.dedupe.urls import registered_domain


def in_scope(url: str, seeds: list[str], scope: str, hosts: list[str]) -> bool:
    """Whether ``url`` is inside the crawl scope: ``host``, ``domain`` or an explicit ``hosts`` list."""
    netloc = urlsplit(url).netloc.lower()
    if scope == "host":
        return netloc in {urlsplit(s).netloc.lower() for s in seeds}
    if scope == "domain":
        return registered_domain(url) in {registered_domain(s) for s in seeds}
    if scope == "hosts":
        return netloc in {h.lower() for h in hosts} or (urlsplit(url).hostname or "") in {h.lower() for h in hosts}
    raise ValueError(f"unknown scope {scope!r}")


_PLAIN = re.compile(r"[^\x00-\x20\[\]\\]*+")  # no whitespace, controls, brackets or backslashes for urljoin to fix


EMPTY_HOST = ("", "/", "?", "#")  # what may follow "//" when the authority is empty


class Resolver:
    """``urljoin`` against one base URL, with exact shortcuts for absolute, ``//host`` and ``/path`` URLs.

    A shortcut applies only where urljoin would return its input unchanged (or merely prefixed):
    no dot segments, no empty query, fragment or parameters for it to drop, nothing for it to strip.
    Anything else goes through urljoin; a URL urljoin rejects resolves to None.
    """

    def __init__(self, base: str):
        self.base = base
        parts = urlsplit(base)
        usable = parts.scheme in ("http", "https") and parts.netloc and _PLAIN.fullmatch(parts.netloc)
        self.scheme = parts.scheme if usable else None
        self.root = f"{parts.scheme}://{parts.netloc}" if usable else None

    def __call__(self, url: str | None) -> str | None:
        """The absolute form of ``url`` (stripped; ``data:`` URIs returned as they are)."""
        if url is None:
            return None
        url = url.strip()
        if not url:
            return None
        if url[:5].lower() == "data:":
            return url
        if (_PLAIN.fullmatch(url) and "/." not in url and url[-1] not in "?#;"
                and "?#" not in url and ";?" not in url and ";#" not in url):
            host_at = 7 if url.startswith("http://") else 8 if url.startswith("https://") else 0
            if host_at and url[host_at:host_at + 1] not in EMPTY_HOST:  # an empty host: urljoin reads it as relative
                return url
            if self.scheme is not None and url[0] == "/" and not host_at:
                if url[1:2] != "/":
                    return self.root + url
                if url[2:3] not in EMPTY_HOST:
                    return f"{self.scheme}:{url}"
        try:
            return urljoin(self.base, url)
        except ValueError:
            return None
