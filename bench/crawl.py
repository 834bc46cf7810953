"""Live crawl of the sample web on loopback: pages/s with politeness off and on, beside a bare fetch loop,
and the per-host delay checked from the server's request log."""

from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from webclip.config import build
from webclip.crawl.config import CrawlConfig
from webclip.crawl.crawler import crawl
from webclip.sampleweb.generate import SampleWebConfig, generate
from webclip.sampleweb.serve import start, stop

PORT = 8799


def bare(urls: list[str], threads: int) -> float:
    """The anchor: the same pages fetched with requests by a thread pool, no parsing, no politeness."""
    session = requests.Session()
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda u: session.get(u, timeout=10).content, urls))
    return len(urls) / (time.perf_counter() - started)


def main(pages: int = 2000, polite_pages: int = 150, delay: float = 0.05) -> dict:
    """Measure and print one JSON line."""
    with tempfile.TemporaryDirectory() as tmp:
        web = Path(tmp) / "web"
        generate(SampleWebConfig(pages=pages, images=pages), web)
        log = Path(tmp) / "requests.log"
        server = start(web, PORT, log)
        base = f"http://127.0.0.1:{PORT}"
        try:
            urls = [f"{base}/{p.relative_to(web / 'site')}" for p in sorted((web / "site" / "s").rglob("*.html"))]
            anchor = bare(urls, 8)
            common = {"seeds": [f"{base}/index.html"], "allow_private": [f"127.0.0.1:{PORT}"], "progress": False,
                      "timeout": 2.0, "retries": 0, "concurrency": 8,
                      # Throughput, not robustness: the sample web's deliberately slow page would otherwise be
                      # tried again later (transient_retries), adding an idle tail the bare loop never pays.
                      "transient_retries": 0}
            off = build(CrawlConfig, {**common, "per_host_delay": 0.0, "per_host_concurrency": 8})
            started = time.perf_counter()
            entries = crawl(off, off.seeds, Path(tmp) / "off")
            off_rate = len(entries) / (time.perf_counter() - started)
            log.write_text("")
            on = build(CrawlConfig, {**common, "per_host_delay": delay, "per_host_concurrency": 2, "max_pages": polite_pages})
            started = time.perf_counter()
            polite = crawl(on, on.seeds, Path(tmp) / "on")
            on_rate = len(polite) / (time.perf_counter() - started)
            times = sorted(float(line.split("\t")[0]) for line in log.read_text().splitlines())
            gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        finally:
            stop(server)
    out = {"bench": "crawl", "pages": len(entries), "bare_requests_pages_s": round(anchor, 1),
           "politeness_off_pages_s": round(off_rate, 1), "ratio_off_vs_bare": round(off_rate / anchor, 3),
           "politeness_on_pages_s": round(on_rate, 1), "per_host_delay_s": delay,
           "min_gap_between_requests_s": round(min(gaps), 4), "delay_honoured": min(gaps) >= delay - 0.005,  # 5 ms for loopback arrival jitter
           "requests_logged": len(times)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
