"""Extraction pages/s on ../shared/data/html: webclip vs a bare selectolax parse vs the bs4 reference."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from webclip.crawl.charset import decode_html
from webclip.crawl.extract import extract

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "html"


def _time(fn, pages) -> float:  # noqa: ANN001
    started = time.perf_counter()
    for text, url in pages:
        fn(text, url)
    return len(pages) / (time.perf_counter() - started)


def main() -> dict:
    """Measure and print one JSON line."""
    if not DATA.exists():
        out = {"bench": "extract", "skipped": f"{DATA} not found"}
        print(json.dumps(out))
        return out
    index = [json.loads(line) for line in (DATA / "index.jsonl").read_text().splitlines()]
    pages = []
    for row in index:
        text, _ = decode_html(gzip.decompress((DATA / row["file"]).read_bytes()))
        pages.append((text, row.get("url") or "http://example.com/"))
    runs: dict[str, list[float]] = {"bare": [], "ours": [], "links": []}
    for _ in range(3):  # interleaved, best of three: the machine's noise hits every variant alike
        runs["bare"].append(_time(lambda t, u: LexborHTMLParser(t).css("img"), pages))
        runs["ours"].append(_time(lambda t, u: extract(t, u, "selectolax", links=False), pages))
        runs["links"].append(_time(lambda t, u: extract(t, u, "selectolax"), pages))
    bare, ours, with_links = (max(runs[k]) for k in ("bare", "ours", "links"))
    ref = _time(lambda t, u: extract(t, u, "bs4", links=False), pages[:60])
    out = {"bench": "extract", "pages": len(pages), "webclip_pages_s": round(ours, 1),
           "bare_selectolax_pages_s": round(bare, 1), "bs4_lxml_pages_s": round(ref, 1),
           "webclip_with_links_pages_s": round(with_links, 1), "ratio_vs_bare": round(ours / bare, 3)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
