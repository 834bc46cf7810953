"""Keep/drop rules for candidates, each with a named reason."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from webclip.dedupe.urls import image_url_key
from webclip.denylist import REASON as DENYLISTED
from webclip.denylist import Denylist, Entry, row_denied
from webclip.pipelines.config import CurateConfig

JUNK_WORDS = {"image", "img", "photo", "picture", "pic", "logo", "spacer", "icon", "thumbnail", "banner",
              "placeholder", "untitled", "blank", "null", "undefined", "click here", "tracking", "pixel", "avatar"}
FILE_NAME = re.compile(r"^[\w\-. ]+\.(jpe?g|png|gif|webp|bmp|svg|tiff?|avif|heic)$", re.IGNORECASE)
CAMERA_NAME = re.compile(r"^(img|dsc|dscn|dcim|pxl|photo|image)[_\- ]?\d+", re.IGNORECASE)
BARE_URL = re.compile(r"^(https?://|www\.)\S+$", re.IGNORECASE)
REPEATED = re.compile(r"(.)\1{5,}")
NON_IMAGE_EXT = {".html", ".htm", ".php", ".js", ".css", ".svg", ".pdf", ".mp4", ".mp3", ".txt", ".xml", ".json", ".ico"}
PIXEL_HINTS = ("pixel", "tracking", "beacon", "spacer", "1x1", "blank.gif")


def alt_reason(caption: str, cfg: CurateConfig) -> str | None:
    """Why an alt text is unusable, or None."""
    if len(caption) < cfg.min_alt_chars:
        return "filter/alt_too_short"
    if len(caption) > cfg.max_alt_chars:
        return "filter/alt_too_long"
    low = caption.lower().strip(" .!")
    if low in JUNK_WORDS:
        return "filter/junk_alt"
    if FILE_NAME.match(caption) or CAMERA_NAME.match(caption):
        return "filter/file_name_alt"
    if BARE_URL.match(caption):
        return "filter/url_alt"
    if REPEATED.search(caption):
        return "filter/repeated_chars"
    if len(caption.split()) < cfg.min_alt_words:
        return "filter/alt_too_few_words"
    return None


def url_reason(row: dict[str, Any], cfg: CurateConfig) -> str | None:
    """Why an image URL is unusable (tracking pixels, tiny sizes, non-image files), or None."""
    url = row["image_url"]
    path = urlsplit(url).path.lower()
    if any(h in path for h in PIXEL_HINTS):
        return "filter/tracking_pixel"
    w, h = row.get("width"), row.get("height")
    if (w is not None and w < cfg.min_image_side) or (h is not None and h < cfg.min_image_side):
        return "filter/too_small_declared"
    dot = path.rfind(".")
    if dot > path.rfind("/") and path[dot:] in NON_IMAGE_EXT:
        return "filter/non_image_extension"
    return None


def filter_reason(row: dict[str, Any], cfg: CurateConfig, denylist: Denylist | None = None) -> str | None:
    """The first rule a normalised candidate breaks, or None to keep it.

    A page's own opt-out comes before the denylist, so the entries that opt-outs add to it never rename the drop
    of the same candidate on a rerun; everything else the denylist names goes before any other rule.
    """
    if row.get("opt_out"):
        return "filter/opt_out"
    if denylist and row_denied(denylist, row):
        return DENYLISTED
    return url_reason(row, cfg) or alt_reason(row["caption"], cfg)


def optout_entries(rows: Iterable[dict[str, Any]]) -> list[Entry]:
    """Denylist entries for the pages that opted out (robots ``noai``/``noimageindex`` in a meta tag or header).

    The page's own signal covers the images it shows, so the page URL is denied: later crawls do not fetch it
    and every stage drops its pairs, in this run and (with a shared denylist) in others.
    """
    return sorted({Entry("page_url", key, "opt_out/page") for r in rows
                   if r.get("opt_out") and (key := image_url_key(r["page_url"]))})
