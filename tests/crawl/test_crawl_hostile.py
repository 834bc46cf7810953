"""The live crawler against hostile loopback sites: containment, per-host politeness, transient drops, empty runs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import free_port
from webclip.config import build
from webclip.crawl import crawler as crawler_module
from webclip.crawl.config import CrawlConfig
from webclip.crawl.crawler import Crawler
from webclip.layout import table_path
from webclip.stats import check_identity


@dataclass
class Route:
    """One canned answer; ``hang_up`` closes the connection without answering."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html"})
    delay: float = 0.0
    hang_up: bool = False


class Site(ThreadingHTTPServer):
    """A loopback site of canned routes (a route may be a function, called per request), logging every request."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: str, routes: dict[str, Route | Callable[[], Route]]):
        self.routes = routes
        self.requests: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        super().__init__((address, free_port()), Handler)

    @property
    def base(self) -> str:
        """``http://address:port``."""
        return f"http://{self.server_address[0]}:{self.server_address[1]}"

    def hits(self, path: str) -> int:
        """How many times ``path`` was requested."""
        return sum(p == path for _, p in self.requests)

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        """Hang-ups are the point here: stay quiet."""


class Handler(BaseHTTPRequestHandler):
    """Serves the site's routes; 404 for anything else."""

    server: Site
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass

    def do_GET(self) -> None:  # noqa: N802
        """Answer with the route's status, headers and body after its delay."""
        with self.server.lock:
            self.server.requests.append((time.monotonic(), self.path))
        route = self.server.routes.get(self.path, Route(404, b"<html>not found</html>"))
        route = route() if callable(route) else route
        time.sleep(route.delay)
        if route.hang_up:
            self.close_connection = True
            return
        self.send_response(route.status)
        for k, v in route.headers.items():
            self.send_header(k, v)
        if not any(k.lower() == "content-length" for k in route.headers):
            self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        self.wfile.write(route.body)


@pytest.fixture()
def sites() -> Iterator[Callable[[str, dict], Site]]:
    """Start loopback sites on given addresses (127.0.0.2, 127.0.0.3...); all stopped afterwards."""
    started: list[Site] = []

    def start(address: str, routes: dict) -> Site:
        site = Site(address, routes)
        threading.Thread(target=site.serve_forever, daemon=True).start()
        started.append(site)
        return site

    yield start
    for site in started:
        site.shutdown()
        site.server_close()


def html(body: str) -> bytes:
    """A small HTML page."""
    return f"<!doctype html><html lang='en'><body>{body}</body></html>".encode()


def img(name: str) -> str:
    """An <img> whose alt text names it."""
    return f'<img src="/img/{name}.jpg" alt="a photo of the {name} on a table" width="200" height="200">'


def config(sites: list[Site], **crawl) -> CrawlConfig:
    """A fast, impolite-enough crawl of the given loopback sites."""
    fields = {"seeds": [f"{s.base}/index.html" for s in sites], "allow_private": [s.base[7:] for s in sites],
              "per_host_delay": 0.0, "per_host_concurrency": 2, "concurrency": 4, "timeout": 2.0, "retries": 0,
              "progress": False, "use_sitemaps": False, "transient_retries": 1, "transient_retry_delay": 0.1,
              **crawl}
    return build(CrawlConfig, fields)


HOSTILE_LINKS = ['<a href="https://[x]/">v6</a>', '<a href="http://[your-domain]/x">v6</a>',
                 '<a href="http://host:99999999/">port</a>', '<a href="http://a b.com/">space</a>',
                 '<a href="javascript:void(0)">js</a>', '<a href="mailto:a@b.c">mail</a>', '<a href="">self</a>',
                 '<a href="https://xn--/">idna</a>', f'<a href="/{"z" * 9000}">long</a>']
HOSTILE_PAGES = {  # path -> the outcomes that name what went wrong (after helper fixes: a fetch reason)
    "/bad-redirect": {"bad_redirect"},
    "/retry-soon": {"http_503"},
    "/hang-up": {"connection_error"},
    "/bad-gzip": {"bad_encoding"},
    "/to-private": {"robots_disallowed"},
    "/image.png": {"not_html"},
    "/garbage.html": {"ok"},
    "/huge-attrs.html": {"ok"},
}


def hostile_routes() -> dict[str, Route]:
    """Good pages with candidates, and one page for each hostile answer."""
    links = "".join(f'<a href="{p}">{p}</a>' for p in ["/good1.html", "/good2.html", *HOSTILE_PAGES])
    garbage = bytes(range(256)) * 64 + b"<img src=/x alt='\xff\xfe \x00 tag" + b"<" * 5000
    huge = html(f'<img src="/img/{"h" * 300_000}.jpg" alt="{"a huge alt " * 20_000}">'
                + f'<a href="/{"q" * 300_000}">x</a><div {"data-x=" * 50_000}></div>' + img("kettle"))
    return {
        "/robots.txt": Route(body=b"User-agent: *\nDisallow: /private/\n", headers={"Content-Type": "text/plain"}),
        "/index.html": Route(body=html(links + "".join(HOSTILE_LINKS) + img("teapot"))),
        "/good1.html": Route(body=html(img("lamp") + "".join(HOSTILE_LINKS))),
        "/good2.html": Route(body=html(img("chair"))),
        "/bad-redirect": Route(302, headers={"Location": "http://[your-domain]/x"}),
        "/retry-soon": Route(503, b"later", {"Retry-After": "soon", "Content-Type": "text/html"}),
        "/hang-up": Route(hang_up=True),
        "/bad-gzip": Route(body=b"this is not gzip at all" * 10, headers={"Content-Type": "text/html",
                                                                           "Content-Encoding": "gzip"}),
        "/to-private": Route(302, headers={"Location": "/private/secret.html"}),
        "/private/secret.html": Route(body=html(img("secret"))),
        "/image.png": Route(body=b"\x89PNG\r\n\x1a\n" + bytes(100), headers={"Content-Type": "image/png"}),
        "/garbage.html": Route(body=garbage),
        "/huge-attrs.html": Route(body=huge),
    }


def test_hostile_pages_and_links_are_counted_drops_and_the_crawl_goes_on(sites, tmp_path) -> None:
    site = sites("127.0.0.2", hostile_routes())
    crawl = Crawler(config([site], retries=1, backoff=0.01), [f"{site.base}/index.html"], tmp_path / "work")
    entries = crawl.run()
    outcome = {e["url"].removeprefix(site.base): e["outcome"] for e in entries}
    for path, named in HOSTILE_PAGES.items():
        assert outcome.get(path) in named, (path, outcome.get(path))
    assert site.hits("/private/secret.html") == 0  # robots.txt checked for the redirect's target
    assert site.hits("/retry-soon") == 2 * 2  # one retry by the fetcher, one transient retry later in the run
    alts = {c["alt"] for e in entries for c in e["candidates"]}
    assert {f"a photo of the {n} on a table" for n in ("teapot", "lamp", "chair", "kettle")} <= alts
    links = crawl.frontier.links.as_dict()
    check_identity(links)
    assert links["dropped"]["crawl/bad_link"] >= 2 * 3 and links["dropped"]["crawl/url_too_long"] >= 2
    assert links["dropped"]["crawl/not_http"] >= 2 * 2 and links["kept"] == len(entries) == len(outcome)


def test_a_page_that_raises_is_a_counted_drop_with_its_traceback_logged(sites, tmp_path, monkeypatch, caplog) -> None:
    site = sites("127.0.0.2", hostile_routes())
    real = crawler_module.decode_html

    def buggy(body: bytes, ctype: str) -> tuple[str, str]:
        if b"chair" in body:
            raise KeyError("a genuine bug")
        return real(body, ctype)

    def buggy_parser(text: str, *args: object, **kw: object) -> object:
        if "lamp" in text:
            raise IndexError("a parser bug")
        return real_extract(text, *args, **kw)

    real_extract = crawler_module.extract
    monkeypatch.setattr(crawler_module, "decode_html", buggy)
    monkeypatch.setattr(crawler_module, "extract", buggy_parser)
    with caplog.at_level(logging.ERROR, logger="webclip.crawl.crawler"):
        entries = Crawler(config([site]), [f"{site.base}/index.html"], tmp_path / "work").run()
    outcome = {e["url"].removeprefix(site.base): e["outcome"] for e in entries}
    assert outcome["/good2.html"] == "error" and outcome["/good1.html"] == "parse_error"
    assert outcome["/index.html"] == "ok" and outcome["/garbage.html"] == "ok"
    for page, bug in (("good2.html", "a genuine bug"), ("good1.html", "a parser bug")):
        logged = [r for r in caplog.records if page in r.getMessage()]
        assert len(logged) == 1 and bug in logged[0].exc_text, page


def test_a_slow_host_waiting_for_its_delay_never_blocks_a_ready_host(sites, tmp_path) -> None:
    pages = 8  # the slow host's links are queued first: a first-in-first-out frontier serves them first
    slow = sites("127.0.0.2", {
        "/robots.txt": Route(body=b"User-agent: *\nCrawl-delay: 86400\n", headers={"Content-Type": "text/plain"}),
        "/index.html": Route(body=html("".join(f'<a href="/a{i}.html">a</a>' for i in range(pages)))),
        **{f"/a{i}.html": Route(body=html(img(f"a{i}")), delay=0.2) for i in range(pages)}})
    fast = sites("127.0.0.3", {
        "/index.html": Route(body=html("".join(f'<a href="/b{i}.html">b</a>' for i in range(30))), delay=0.3),
        **{f"/b{i}.html": Route(body=html(img(f"b{i}"))) for i in range(30)}})
    cfg = config([slow, fast], concurrency=3, per_host_concurrency=3, max_crawl_delay=0.5)
    started = time.monotonic()
    entries = Crawler(cfg, cfg.seeds, tmp_path / "work").run()
    assert sum(e["outcome"] == "ok" for e in entries) == pages + 30 + 2
    slow_pages = sorted(t for t, p in slow.requests if p != "/robots.txt")
    fast_done = max(t for t, _ in fast.requests)
    # Crawl-delay 86400 capped to 0.5 s: the slow host is paced, not stalled for a day.
    gaps = [b - a for a, b in zip(slow_pages, slow_pages[1:], strict=False)]
    pairs = [b - a for a, b in zip(slow_pages, slow_pages[2:], strict=False)]  # one late arrival (load) evens out
    assert min(gaps) >= 0.3 and min(pairs) >= 0.9 and time.monotonic() - started < 15, gaps  # uncapped: 86400 s
    # The fast host finished while the slow one still had pages to go (first-in-first-out: after them all).
    assert fast_done < slow_pages[5], (fast_done - started, [t - started for t in slow_pages])


def test_transient_drops_are_tried_again_later_and_again_on_resume(sites, tmp_path) -> None:
    state = {"up": False}

    def flaky() -> Route:
        return Route(body=html(img("flaky"))) if state["up"] else Route(503, b"down")

    site = sites("127.0.0.2", {"/index.html": Route(body=html('<a href="/flaky.html">f</a>' + img("seed"))),
                               "/flaky.html": flaky})
    cfg = config([site], transient_retries=2, transient_retry_delay=0.2)
    entries = Crawler(cfg, cfg.seeds, tmp_path / "work").run()
    assert site.hits("/flaky.html") == 3  # the first try and two more later in the run, then recorded
    assert [e["outcome"] for e in entries if e["url"].endswith("/flaky.html")] == ["http_503"]
    state["up"] = True
    again = Crawler(cfg, cfg.seeds, tmp_path / "work").run()  # resume: the journal's transient drop is not final
    assert site.hits("/flaky.html") == 4 and site.hits("/index.html") == 1
    assert {e["url"].removeprefix(site.base): e["outcome"] for e in again} == {"/index.html": "ok", "/flaky.html": "ok"}


def test_unreachable_robots_is_transient_in_the_run_and_on_resume(sites, tmp_path) -> None:
    state = {"robots": Route(503, b"down", {"Content-Type": "text/plain"})}
    site = sites("127.0.0.2", {"/robots.txt": lambda: state["robots"],
                               "/index.html": Route(body=html(img("seed")))})
    cfg = config([site], transient_retries=2, transient_retry_delay=0.05, robots_retry_interval=0.2)
    entries = Crawler(cfg, cfg.seeds, tmp_path / "work").run()
    assert [e["outcome"] for e in entries] == ["robots_unreachable"] and site.hits("/index.html") == 0
    assert site.hits("/robots.txt") == 3  # asked again with each later try of the page, after the interval
    state["robots"] = Route(200, b"User-agent: *\nAllow: /\n", {"Content-Type": "text/plain"})
    again = Crawler(cfg, cfg.seeds, tmp_path / "work").run()
    assert [e["outcome"] for e in again] == ["ok"] and site.hits("/index.html") == 1


def _cli_crawl(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "webclip.cli", "crawl", "--run", str(tmp_path / "run"),
                           "--no-progress", "--no-use-sitemaps", "--timeout", "1", "--retries", "0", "--per-host-delay", "0",
                           "--transient-retry-delay", "0.05", "--robots-retry-interval", "0.05", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", ["refused", "all_404", "no_images"])
def test_a_crawl_that_read_nothing_fails_without_success(sites, tmp_path, case: str) -> None:
    routes = {"all_404": {}, "no_images": {"/index.html": Route(body=html("<p>no pictures here</p>"))}}
    if case == "refused":
        base, allow = f"127.0.0.2:{free_port()}", None  # nothing listens there
    else:
        site = sites("127.0.0.2", routes[case])
        base = allow = site.base[7:]
    r = _cli_crawl(tmp_path, "--seeds", f"http://{base}/index.html", "--allow-private", allow or base)
    assert r.returncode == 1, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    says = {"refused": "transient reasons (crawl/robots_unreachable 1)", "all_404": "could be read (crawl/http_404 1)",
            "no_images": "no image candidates"}[case]
    assert says in r.stderr, r.stderr
    assert not (tmp_path / "run" / "candidates" / "_SUCCESS").exists()
    assert (tmp_path / "run" / "candidates" / "_work" / "journal.jsonl").exists()  # kept for the rerun


def test_good_pages_still_make_a_finished_stage(sites, tmp_path) -> None:
    site = sites("127.0.0.2", hostile_routes())
    r = _cli_crawl(tmp_path, "--seeds", f"{site.base}/index.html", "--allow-private", site.base[7:])
    assert r.returncode == 0, r.stderr
    stats = json.loads((tmp_path / "run" / "candidates" / "stats.json").read_text())
    for block in (stats, stats["pages"], stats["links"]):
        check_identity(block)
    assert stats["pages"]["in"] == stats["links"]["kept"]  # every admitted URL ends as a counted page
    assert stats["links"]["dropped"]["crawl/bad_link"] >= 6
    rows = pq.read_table(Path(table_path(tmp_path / "run", "candidates")) / "part-00000.parquet")
    assert rows.num_rows == stats["kept"] >= 4
