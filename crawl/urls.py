"""Crawl scope rules."""

from __future__ import annotations

from urllib.parse import urlsplit

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
