"""WARC reading + extraction pages/s: fastwarc + webclip's extractor vs warcio + bs4, same archive."""

from __future__ import annotations

import gzip
import io
import json
import tempfile
import time
from pathlib import Path

HTML = Path(__file__).resolve().parents[2] / "shared" / "data" / "html"


def build_warc(path: Path, copies: int = 4) -> int:
    """Wrap the real pages into one gzipped WARC of HTTP responses; returns the record count."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    index = [json.loads(line) for line in (HTML / "index.jsonl").read_text().splitlines()]
    n = 0
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for c in range(copies):
            for row in index:
                body = gzip.decompress((HTML / row["file"]).read_bytes())
                url = row.get("url") or f"http://example.com/{row['file']}?copy={c}"
                headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
                writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=headers))
                n += 1
    return n


def warcio_bs4(path: Path) -> int:
    """The anchor: warcio iteration and bs4 (lxml) extraction of img src + alt."""
    from bs4 import BeautifulSoup
    from warcio.archiveiterator import ArchiveIterator

    pairs = 0
    with open(path, "rb") as f:
        for record in ArchiveIterator(f):
            if record.rec_type != "response":
                continue
            soup = BeautifulSoup(record.content_stream().read(), "lxml")
            pairs += sum(1 for img in soup.find_all("img") if (img.get("alt") or "").strip())
    return pairs


def main(copies: int = 4) -> dict:
    """Measure and print one JSON line."""
    if not HTML.exists():
        out = {"bench": "warc", "skipped": f"{HTML} not found"}
        print(json.dumps(out))
        return out
    from webclip.crawl.warc import read_archive

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pages.warc.gz"
        records = build_warc(path, copies)
        ours_s, anchor_s = [], []
        for _ in range(2):  # best of two, interleaved: the first also pays both sides' imports
            started = time.process_time()  # CPU seconds: pages per core-second, whatever else shares the machine
            outcomes = list(read_archive(str(path)))
            ours_s.append(time.process_time() - started)
            started = time.process_time()
            anchor_pairs = warcio_bs4(path)
            anchor_s.append(time.process_time() - started)
        ours, anchor = len(outcomes) / min(ours_s), records / min(anchor_s)
    out = {"bench": "warc", "records": records, "webclip_fastwarc_pages_s": round(ours, 1),
           "warcio_bs4_pages_s": round(anchor, 1), "ratio": round(ours / anchor, 2),
           "webclip_candidates": sum(len(o.candidates) for o in outcomes), "anchor_nonempty_alt_pairs": anchor_pairs}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
