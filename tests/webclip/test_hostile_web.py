"""The hostile web (webclip/sampleweb/hostile.py) and a small soak over it (bench/soak.py).

The web's own properties are checked without a network: determinism, every kind present, every URL it
names on loopback. A real server checks the pacing tricks. The soak runs crawl, curate and shards as
``webclip`` processes over ~1,400 URLs and asserts no crash and ``in == kept + Σdropped`` at every stage.
"""

from __future__ import annotations

import html
import ipaddress
import re
import socket
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from bench.soak import YIELDING_PAGES, soak
from webclip.sampleweb.hostile import (
    IMAGE_WEIGHTS,
    NO_PAGES_HOSTS,
    PAGE_WEIGHTS,
    SPECIAL_HOSTS,
    HostileWeb,
    HostileWebConfig,
    serve,
    url_kind,
)

SMALL = HostileWebConfig(seed=3, hosts=14, pages_per_host=250, images_per_page=2, bomb_mib=64)  # past the 50 MiB sitemap cap
ATTR_URL = re.compile(r'(?:href|src|data-src)="([^"]*)"')
ANY_AUTHORITY = re.compile(rb"(?:https?:)?//([^/\"'\s<>?#]*)", re.IGNORECASE)


def _get(web: HostileWeb, url: str) -> tuple[int, bytes, dict[str, str]]:
    parts = urlsplit(url)
    index = next(h.index for h in web.hosts if h.address == parts.hostname)
    reply = web.respond(index, parts.path + (f"?{parts.query}" if parts.query else ""))
    return reply.status, reply.raw or reply.body, dict(reply.headers)


def _crawl_graph(web: HostileWeb) -> tuple[set[str], list[tuple[str, bytes, dict[str, str]]]]:
    """Every page reachable by links from the seeds (no network: answers straight from ``respond``)."""
    addresses = {h.address for h in web.hosts}
    todo, seen, answers = list(web.seeds()), set(web.seeds()), []
    while todo:
        url = todo.pop()
        status, body, headers = _get(web, url)
        answers.append((url, body, headers))
        if status != 200 or not headers.get("Content-Type", "").startswith("text/html"):
            continue
        for raw in ATTR_URL.findall(body.decode("utf-8", "replace")):
            try:
                parts = urlsplit(urljoin(url, html.unescape(raw).strip()))
                port = parts.port
            except ValueError:
                continue
            link = f"http://{parts.hostname}:{port}{parts.path}"  # one page whatever the link's form
            if parts.hostname in addresses and port == web.port and parts.path.endswith(".html") and link not in seen:
                seen.add(link)
                todo.append(link)
    return seen, answers


def test_answers_are_a_function_of_seed_host_and_path():
    """Same seed: the same bytes for every kind of URL; another seed: other pages and images."""
    a, b, other = HostileWeb(SMALL, 9000), HostileWeb(SMALL, 9000), HostileWeb(HostileWebConfig(seed=4, hosts=14), 9000)
    paths = ["/robots.txt", "/index.html", "/sitemap.xml", "/sitemap-bad.xml", "/p/good/0.html",
             *(f"/i/{kind}/7-1.jpg" for kind in IMAGE_WEIGHTS if kind not in ("big_png", "gzip_bomb"))]
    for host in a.hosts:
        for path in paths:
            ra, rb = a.respond(host.index, path), b.respond(host.index, path)
            assert (ra.status, ra.headers, ra.body, ra.pace, ra.raw) == (rb.status, rb.headers, rb.body, rb.pace, rb.raw)
    assert a.respond(0, "/index.html").body != other.respond(0, "/index.html").body
    assert a.respond(0, "/i/good/1-1.jpg").body != other.respond(0, "/i/good/1-1.jpg").body


def test_full_size_web_has_every_kind_and_enough_urls():
    """The full soak's web holds every page kind, image kind and host kind, and at least 50,000 pages."""
    web = HostileWeb(HostileWebConfig(), 9000)  # the full soak's web
    assert {h.kind for h in web.hosts} == {"good", *SPECIAL_HOSTS}
    pages = Counter(web.page_kind(h, n) for h in web.hosts for n in range(h.pages))
    images = Counter(url_kind(web.image_path(h, n, k))[1] for h in web.hosts for n in range(h.pages) for k in range(2))
    assert set(pages) == set(PAGE_WEIGHTS) and set(images) == set(IMAGE_WEIGHTS)
    assert web.total_pages() >= 50_000


def test_every_page_is_linked_and_every_named_host_is_loopback():
    """Links alone reach every page; every authority in any answer (bodies, Location) is one of the web's
    hosts or cannot be parsed, so nothing outside loopback is ever asked for."""
    web = HostileWeb(SMALL, 9000)
    reached, answers = _crawl_graph(web)
    pages = {f"{web.origin(h)}{p}" for h in web.hosts for p in ["/index.html", *(web.page_path(h, n) for n in range(h.pages))]}
    assert len(pages) == web.total_pages() and pages <= reached
    assert all(_get(web, url)[0] == 404 for url in reached - pages)  # hostile links to pages that are not there
    ours = {f"{h.address}:{web.port}" for h in web.hosts}
    strange = Counter()
    for url, body, headers in answers:
        location = headers.get("Location", "")
        for authority in [*ANY_AUTHORITY.findall(body), *ANY_AUTHORITY.findall(location.encode())]:
            text = authority.decode("latin-1").rsplit("@", 1)[-1]
            if text in ours:
                continue
            try:
                host = urlsplit(f"http://{text}/").hostname or ""
                addr = ipaddress.ip_address(host)
                loopback = (getattr(addr, "ipv4_mapped", None) or addr).is_loopback  # ::ffff:127.0.0.1 too
            except ValueError:
                continue  # unparseable: no client can connect anywhere with it
            assert loopback, f"{url} names {text}"
            strange[text] += 1
    assert strange  # the hostile links are there (IPv4-mapped, odd ports), all loopback


def _raw_get(address: str, port: int, path: str, timeout: float = 10.0) -> tuple[float, bytes]:
    """Seconds until the header block ended, and every byte the server sent."""
    started, head_done, data = time.monotonic(), None, b""
    with socket.create_connection((address, port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n".encode())
        while chunk := s.recv(65536):
            data += chunk
            if head_done is None and b"\r\n\r\n" in data:
                head_done = time.monotonic() - started
    return head_done if head_done is not None else float("inf"), data


def test_server_paces_and_lies_as_told():
    """Over real sockets: trickled headers, Content-Length lies, a refused host."""
    cfg = HostileWebConfig(hosts=14, pages_per_host=20, trickle_gap=0.02, slow_seconds=1.0, bomb_mib=1)
    served = serve(cfg)
    web = served.web
    try:
        good = web.good_hosts[0]
        fast, data = _raw_get(good.address, web.port, "/i/good/1-1.jpg")
        assert fast < 0.5 and data.split(b"\r\n\r\n", 1)[1][:2] == b"\xff\xd8"
        trickled, _ = _raw_get(good.address, web.port, "/i/trickle/1-1.jpg")
        assert trickled > 1.0  # ~60 header bytes, 20 ms apart
        head, body = _raw_get(good.address, web.port, "/i/cl_short/1-1.jpg")[1].split(b"\r\n\r\n", 1)
        declared = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        assert declared < len(body)
        refused = web.by_kind["refused"]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((refused.address, web.port), timeout=2).close()
    finally:
        served.stop()
    assert served.counts["i/trickle"] == 1


@pytest.fixture(scope="module")
def small_soak(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One small soak (~1,400 URLs) shared by the assertions below."""
    return soak(SMALL, Path(tmp_path_factory.mktemp("soak")), stage_timeout=120, beam_mode="multi_threading")


@pytest.mark.slow
def test_soak_has_no_crash(small_soak: dict):
    """No stage exits non-zero, hangs or prints a traceback."""
    assert small_soak["urls"] >= 1000
    assert small_soak["crashes"] == 0, small_soak["crash_list"]


@pytest.mark.slow
def test_soak_accounts_for_every_item(small_soak: dict):
    """in == kept + Σdropped in every block of every stage's stats.json, and every stage finished."""
    assert set(small_soak["stages"]) == {"crawl", "curate", "shards"}
    for stage, block in small_soak["stages"].items():
        assert block["identity"] and all(b["ok"] for b in block["identity"].values()), (stage, block["identity"])
    assert small_soak["identity_ok"]


@pytest.mark.slow
def test_soak_leaks_nothing(small_soak: dict):
    """No candidate from forbidden pages or hidden markup; no sample of a kind a careful downloader drops."""
    assert small_soak["candidates"]["leaks"] == {}
    assert small_soak["samples"]["leaks"] == {}
    assert small_soak["samples"]["rows"] > 0


@pytest.mark.slow
def test_soak_keeps_what_is_allowed(small_soak: dict):
    """Pages with odd markup or encoding, lazy images or another agent's directives still give candidates."""
    web = HostileWeb(SMALL, 0)
    present = {web.page_kind(h, n) for h in web.hosts if h.kind not in NO_PAGES_HOSTS for n in range(h.pages)}
    expected = present & set(YIELDING_PAGES)
    missing = expected & set(small_soak["candidates"]["page_kinds_without_candidates"])
    assert expected and not missing, f"no candidates from pages of kind {sorted(missing)}"
