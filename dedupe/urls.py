"""URL and text keys for deduplication."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

TRACKING_PREFIXES = ("utm_",)
TRACKING_PARAMS = {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "yclid", "_ga", "igshid", "ref_src"}
DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_url(url: str, strip_tracking: bool = True, sort_query: bool = True) -> str | None:
    """Canonical form of an http(s) URL, or None for other schemes and unparsable URLs."""
    try:
        p = urlsplit(url.strip())
        port = p.port
    except ValueError:
        return None
    scheme = p.scheme.lower()
    if scheme not in DEFAULT_PORTS or not p.hostname:
        return None
    host = p.hostname.lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = parse_qsl(p.query, keep_blank_values=True)
    if strip_tracking:
        query = [(k, v) for k, v in query if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)]
    if sort_query:
        query = sorted(query)
    return urlunsplit((scheme, netloc, p.path or "/", urlencode(query, doseq=True), ""))


def image_url_key(url: str) -> str:
    """The dedupe key of an image URL: its normalised form (the raw URL when it cannot be parsed)."""
    return normalise_url(url) or url.strip()


@lru_cache(maxsize=1)
def _extractor():  # noqa: ANN202
    import tldextract

    # The bundled public-suffix snapshot only: never fetch the list at run time.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def registered_domain(url_or_host: str) -> str:
    """The registered domain (``example.co.uk``); IPs and bare hosts are returned as they are."""
    host = urlsplit(url_or_host).hostname if "//" in url_or_host else url_or_host
    host = (host or "").lower()
    ext = _extractor()(host)
    return ext.top_domain_under_public_suffix or host
