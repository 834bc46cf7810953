"""What extraction needs from a parsed page, whichever parser produced it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class ImgTag:
    """The attributes of one ``<img>`` and of the ``<source>`` siblings before it in its ``<picture>`` parent."""

    attrs: dict[str, str | None]
    sources: list[dict[str, str | None]] = field(default_factory=list)


@dataclass
class ParsedPage:
    """The ``<img>`` tags, links, ``<base href>``, ``<html lang>`` and robots directives of a page."""

    imgs: list[ImgTag]
    links: list[str]
    base_href: str | None = None
    lang: str | None = None
    robots: set[str] = field(default_factory=set)


def robots_tokens(values: list[str]) -> set[str]:
    """Lower-cased directives of robots ``<meta>`` contents (not ``X-Robots-Tag``: it has agent scopes, read by
    ``webclip.robots.xrobots_forbids``)."""
    out: set[str] = set()
    for v in values:
        out.update(t.strip().lower() for t in re.split(r"[,\s]+", v) if t.strip())
    return out
