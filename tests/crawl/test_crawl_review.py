"""Review of the live crawler's containment, transient handling and politeness, on loopback sites."""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.crawl.test_crawl_hostile import Route, _cli_crawl, config, html, img, sites  # noqa: F401  (fixture)
from webclip.crawl.config import CrawlConfig
from webclip.crawl.crawler import Crawler, page_links
from webclip.crawl.frontier import Frontier
from webclip.crawl.sitemaps import sitemap_urls
from webclip.stats import check_identity


def urlset(*locs: str) -> bytes:
    """A sitemap listing ``locs`` as they are (no escaping: the point is what a hostile host writes)."""
    return ("<urlset>" + "".join(f"<url><loc>{loc}</loc></url>" for loc in locs) + "</urlset>").encode()


def test_a_bad_sitemap_location_loses_only_itself() -> None:
    """``http://[bad/x`` made urljoin raise, and the whole host's sitemaps were lost with it."""
    files = {
        "http://h/a.xml": urlset("http://h/p1", "http://[bad/x", "http://h:99999999/port", "/p2"),
        "http://h/index.xml": b"<sitemapindex><sitemap><loc>http://[bad/i.xml</loc></sitemap>"
                              b"<sitemap><loc>/b.xml</loc></sitemap></sitemapindex>",
        "http://h/b.xml": urlset("http://h/p3"),
    }
    drops: Counter = Counter()
    declared = ["/a.xml", "http://[bad-declared/s.xml", "/index.xml"]  # robots.txt Sitemap: lines, one broken
    urls = sitemap_urls("http://h/", declared, files.get, drops=drops)
    assert urls == ["http://h/p1", "http://h/p2", "http://h/p3"]
    assert drops == {"sitemap/bad_loc": 4}


def test_url_budget_cut_is_counted() -> None:
    files = {"http://h/sitemap.xml": urlset(*(f"/p{i}" for i in range(10)))}
    drops: Counter = Counter()
    assert len(sitemap_urls("http://h/", [], files.get, max_urls=4, drops=drops)) == 4
    assert drops == {"sitemap/url_budget": 6}


def test_a_hostile_sitemap_in_a_crawl_is_a_counted_drop(sites, tmp_path) -> None:  # noqa: F811
    site = sites("127.0.0.61", {})
    site.routes.update({
        "/robots.txt": Route(body=f"User-agent: *\nAllow: /\nSitemap: {site.base}/s.xml\n".encode(),
                             headers={"Content-Type": "text/plain"}),
        "/s.xml": Route(body=urlset(f"{site.base}/orphan.html", "http://[bad/x"), headers={"Content-Type": "text/xml"}),
        "/index.html": Route(body=html(img("seed"))),
        "/orphan.html": Route(body=html(img("orphan")))})
    r = _cli_crawl(tmp_path, "--seeds", f"{site.base}/index.html", "--allow-private", site.base[7:], "--use-sitemaps")
    assert r.returncode == 0, r.stderr
    stats = json.loads((tmp_path / "run" / "candidates" / "stats.json").read_text())
    assert stats["sitemap_urls"] == 1 and stats["sitemap_drops"] == {"sitemap/bad_loc": 1}
    assert stats["kept"] == 2 and site.hits("/orphan.html") == 1
    for block in (stats, stats["pages"], stats["links"]):
        check_identity(block)


def test_a_sitemap_that_failed_transiently_is_read_again_on_rerun(sites, tmp_path) -> None:  # noqa: F811
    state = {"up": False}
    site = sites("127.0.0.62", {})
    site.routes.update({
        "/robots.txt": Route(body=f"User-agent: *\nSitemap: {site.base}/s.xml\n".encode(),
                             headers={"Content-Type": "text/plain"}),
        "/s.xml": lambda: Route(body=urlset(f"{site.base}/orphan.html")) if state["up"] else Route(503, b"down"),
        "/index.html": Route(body=html(img("seed"))),
        "/orphan.html": Route(body=html(img("orphan")))})
    cfg = config([site], use_sitemaps=True)
    first = Crawler(cfg, cfg.seeds, tmp_path / "work").run()
    [sitemaps] = [e for e in first if e["outcome"] == "sitemaps"]
    assert sitemaps["sitemap_drops"] == {"sitemap/http_503": 1} and site.hits("/orphan.html") == 0
    state["up"] = True
    again = Crawler(cfg, cfg.seeds, tmp_path / "work").run()  # the rerun of a crawl that did not finish
    assert site.hits("/orphan.html") == 1 and site.hits("/index.html") == 1
    assert {e["url"].removeprefix(site.base) for e in again if e["outcome"] == "ok"} == {"/index.html", "/orphan.html"}


def paced_site(sites, address: str, pages: range) -> object:  # noqa: F811
    """A host whose robots.txt asks for a long Crawl-delay, serving pages ``/t{i}.html``."""
    return sites(address, {
        "/robots.txt": Route(body=b"User-agent: *\nCrawl-delay: 60\n", headers={"Content-Type": "text/plain"}),
        **{f"/t{i}.html": Route(body=html(img(f"t{i}"))) for i in pages}})


def movers_to(sites, address: str, targets: list[str]) -> object:  # noqa: F811
    """A host whose pages ``/r{i}.html`` all moved (302) to ``targets``."""
    return sites(address, {
        "/index.html": Route(body=html("".join(f'<a href="/r{i}.html">r</a>' for i in range(len(targets))))),
        **{f"/r{i}.html": Route(302, headers={"Location": t}) for i, t in enumerate(targets)}})


@pytest.mark.parametrize("case", ["to_one_paced_host", "within_paced_hosts"])
def test_redirects_into_a_paced_host_never_hold_the_threads(sites, tmp_path, case: str) -> None:  # noqa: F811
    """Pages redirecting into a host that waits for its Crawl-delay left every thread asleep in the fetcher's pacer.

    Two hosts moved all their pages to one paced host, or two paced hosts moved pages within themselves (old
    http links); 4 threads, 2 per host. A host with work ready (20 pages) waited behind them.
    """
    if case == "to_one_paced_host":
        paced = [paced_site(sites, "127.0.0.63", range(8))]
        movers = [movers_to(sites, f"127.0.0.{64 + h}", [f"{paced[0].base}/t{4 * h + i}.html" for i in range(4)])
                  for h in range(2)]
    else:
        paced = [paced_site(sites, f"127.0.0.{63 + h}", range(4)) for h in range(2)]
        for site in paced:
            site.routes["/index.html"] = Route(body=html("".join(f'<a href="/r{i}.html">r</a>' for i in range(4))))
            site.routes.update({f"/r{i}.html": Route(302, headers={"Location": f"/t{i}.html"}) for i in range(4)})
        movers = paced
    fast = sites("127.0.0.66", {
        "/index.html": Route(body=html("".join(f'<a href="/c{i}.html">c</a>' for i in range(20))), delay=0.3),
        **{f"/c{i}.html": Route(body=html(img(f"c{i}"))) for i in range(20)}})
    cfg = config([*movers, fast], concurrency=4, per_host_concurrency=2, max_crawl_delay=0.4,
                 allow_private=[s.base[7:] for s in {*movers, *paced, fast}])
    started = time.monotonic()
    entries = Crawler(cfg, cfg.seeds, tmp_path / "work").run()
    outcomes = Counter(e["outcome"] for e in entries)
    assert outcomes == {"ok": 2 + 8 + 1 + 20}, outcomes
    for site in paced:
        times = sorted(t for t, p in site.requests if p != "/robots.txt")
        assert min(b - a for a, b in zip(times, times[1:], strict=False)) >= 0.3  # still paced
    targets = sorted(t for site in paced for t, p in site.requests if p.startswith("/t"))
    fast_done = max(t for t, _ in fast.requests)
    # The fast host is done while the paced ones still have most of their pages to go.
    assert fast_done < targets[4], (fast_done - started, [round(t - started, 2) for t in targets])
    alts = {c["alt"] for e in entries for c in e["candidates"]}
    assert {f"a photo of the t{i} on a table" for i in range(8 // len(paced))} <= alts  # the moved pages' images


@pytest.mark.parametrize(("header", "followed"), [("googlebot: nofollow", True), ("otherbot: none", True),
                                                   ("webclip: nofollow", False), ("none", False),
                                                   ("noarchive, nofollow", False)])
def test_x_robots_tag_nofollow_is_read_by_its_agent_scope(sites, tmp_path, header: str, followed: bool) -> None:  # noqa: F811
    """``googlebot: nofollow`` was read as a bare nofollow (the whole value split on spaces): our crawl stopped there."""
    site = sites("127.0.0.67", {
        "/index.html": Route(body=html('<a href="/next.html">n</a>' + img("seed")),
                             headers={"Content-Type": "text/html", "X-Robots-Tag": header}),
        "/next.html": Route(body=html(img("next")))})
    cfg = config([site])
    entries = Crawler(cfg, cfg.seeds, tmp_path / "work").run()
    assert site.hits("/next.html") == int(followed), entries
    [seed] = [e for e in entries if e["url"].endswith("/index.html")]
    assert seed["link_drops"] == ({} if followed else {"nofollow": 1})


def test_the_rerun_of_an_incomplete_crawl_resumes_its_journal(sites, tmp_path) -> None:  # noqa: F811
    """Mostly transient drops: exit 1, no _SUCCESS; the rerun fetches only the transient pages and finishes."""
    state = {"up": False}
    flaky = [f"/f{i}.html" for i in range(3)]
    site = sites("127.0.0.68", {
        "/index.html": Route(body=html("".join(f'<a href="{p}">f</a>' for p in flaky) + img("seed"))),
        **{p: (lambda p=p: Route(body=html(img(p[1:3]))) if state["up"] else Route(503, b"down")) for p in flaky}})
    args = ("--seeds", f"{site.base}/index.html", "--allow-private", site.base[7:], "--transient-retries", "1")
    r = _cli_crawl(tmp_path, *args)
    assert r.returncode == 1 and "3 of 4 pages dropped for transient reasons" in r.stderr, r.stderr
    assert not (tmp_path / "run" / "candidates" / "_SUCCESS").exists()
    state["up"] = True
    r = _cli_crawl(tmp_path, *args, "--concurrency", "2", "--timeout", "3")  # run-time knobs changed too
    assert r.returncode == 0, r.stderr
    assert site.hits("/index.html") == 1 and all(site.hits(p) == 2 + 1 for p in flaky)
    stats = json.loads((tmp_path / "run" / "candidates" / "stats.json").read_text())
    assert stats["pages"] == {"unit": "pages", "in": 4, "kept": 4, "dropped": {}} and stats["kept"] == 4
    assert not (tmp_path / "run" / "candidates" / "_work").exists()


@pytest.mark.parametrize(("first", "second", "outcome"), [
    ("text/html", "text/html; charset=utf-8", "ok"), ("image/png", "text/html", "ok"),
    ("text/html", "image/png", "not_html"), ("text/html", "*/*", "ok")])
def test_a_repeated_content_type_is_read_as_browsers_do(sites, tmp_path, first: str, second: str,  # noqa: F811
                                                        outcome: str) -> None:
    """Two Content-Type headers were joined into "text/html, text/html; charset=utf-8": the page was not_html."""
    site = sites("127.0.0.69", {"/index.html": Route(body=html(img("seed")),
                                                     headers={"Content-Type": first, "content-type": second})})
    cfg = config([site])
    assert [e["outcome"] for e in Crawler(cfg, cfg.seeds, tmp_path / "work").run()] == [outcome]


FUZZ_EXAMPLES = int(os.environ.get("WEBCLIP_FUZZ_EXAMPLES", "300"))
HREF_PIECES = ["http://", "https://", "//", "[", "]", ":", "@", "%", "%zz", "xn--", "\\", "/", "?", "#", "..", "a",
               "é", "\u3002", "\uff0e", "99999999999", "[::1]", "\x00", " ", "\ufffd", "ß", "localhost", "%00",
               "javascript:", "data:", "a.test", "b.test", ":8080", "utm_source=x&"]
hrefs = st.lists(st.sampled_from(HREF_PIECES) | st.text(max_size=3), max_size=10).map("".join)


@settings(max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(links=st.lists(hrefs, max_size=6), base=st.sampled_from(["http://a.test/x/y", "http://a.test:8080/",
                                                               "https://[::1]/", "http://user@a.test/"]))
def test_fuzz_no_link_escapes_the_frontier_and_each_is_counted(links: list[str], base: str) -> None:
    """A page's links, however hostile, are admitted or counted drops; the frontier hands out and releases them."""
    frontier = Frontier(CrawlConfig(seeds=[base], scope="domain"), [base])
    seed, _, host = frontier.next(0.0)
    frontier.release(host)
    resolved, drops = page_links(links, base)
    frontier.finish({"url": seed.page, "depth": 0, "outcome": "ok", "candidates": [], "links": resolved,
                     "link_drops": drops})
    check_identity(frontier.links.as_dict())
    assert frontier.links.n_in == 1 + len(links)
    handed = 0
    while (task := frontier.next(1e12)) is not None:
        frontier.release(task[2])
        handed += 1
    assert 1 + handed == frontier.links.kept == len(frontier.admitted)


def test_x_robots_tag_for_our_robots_agent_name_drops_the_images(sites, tmp_path) -> None:  # noqa: F811
    """The crawler's robots_agent reaches the extractor: a header scoped to that name applies to us."""
    site = sites("127.0.0.70", {
        "/index.html": Route(body=html(img("seed")), headers={"Content-Type": "text/html",
                                                              "X-Robots-Tag": "mybot: noimageindex"})})
    for agent, kept in (("mybot", 0), ("webclip", 1)):
        cfg = config([site], robots_agent=agent)
        [entry] = Crawler(cfg, cfg.seeds, tmp_path / agent).run()
        assert len(entry["candidates"]) == kept, agent
