"""The polite fetcher against real loopback servers with hostile behaviours."""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.hostile_http import FakeDNS, RawServer, Reply, loopback_only, response
from webclip.fetch import TRANSIENT_ERRORS, FetchConfig, Fetcher, is_transient, retry_after_seconds
from webclip.robots import ALLOW_ALL, DISALLOW_ALL, RobotsCache, robots_outcome, xrobots_forbids

BOMB = gzip.compress(b"\0" * 50_000_000, compresslevel=9)


class Hostile(BaseHTTPRequestHandler):
    """Routes that misbehave on purpose."""

    protocol_version = "HTTP/1.1"
    hits: dict[str, int] = {}

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass

    def do_GET(self) -> None:  # noqa: N802
        Hostile.hits[self.path] = Hostile.hits.get(self.path, 0) + 1
        if self.path == "/stall":  # headers at once, then one byte every 0.3 s forever-ish
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.3)
        elif self.path == "/endless":  # no length, bytes until the client hangs up
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for _ in range(10_000):
                    self.wfile.write(b"y" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif self.path == "/busy":  # 429 twice with Retry-After, then fine
            if Hostile.hits[self.path] <= 2:
                self._reply(429, b"slow down", {"Retry-After": "1"})
            else:
                self._reply(200, b"ok")
        elif self.path == "/storm":
            self._reply(503, b"down")
        elif self.path in ("/loop-a", "/loop-b"):
            self._reply(302, b"", {"Location": "/loop-b" if self.path == "/loop-a" else "/loop-a"})
        elif self.path == "/gzip":  # a page sent compressed, as most real servers do
            self._reply(200, gzip.compress("<p>café</p>".encode()), {"Content-Encoding": "gzip"})
        elif self.path == "/gzip-bomb":  # 50 KB on the wire, 50 MB decoded
            self._reply(200, BOMB, {"Content-Encoding": "gzip"})
        elif self.path == "/reset":  # promises 1000 bytes, sends 10, hangs up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif self.path.startswith("/to-private/"):
            self._reply(302, b"", {"Location": f"http://127.0.0.1:{self.path.rsplit('/', 1)[1]}/secret"})
        else:
            self._reply(200, b"hello")

    def _reply(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class QuietServer(ThreadingHTTPServer):
    """Clients hanging up mid-response is what these tests provoke: no tracebacks for it."""

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        pass


@pytest.fixture(scope="module")
def hostile():
    server = QuietServer(("127.0.0.1", 0), Hostile)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _fetcher(host: str, **kw) -> Fetcher:
    base = {"allow_private": [host], "per_host_delay": 0.0, "retries": 0, "backoff": 0.1}
    return Fetcher(FetchConfig(**{**base, **kw}))


def test_total_deadline_fires_on_a_stalling_body(hostile) -> None:
    started = time.monotonic()
    r = _fetcher(hostile, timeout=1.0).get(f"http://{hostile}/stall")
    assert r.error == "timeout"
    assert time.monotonic() - started < 2.5


def test_size_cap_fires_on_an_endless_body(hostile) -> None:
    r = _fetcher(hostile, max_bytes=200_000).get(f"http://{hostile}/endless")
    assert r.error == "too_large"


def test_429_retry_after_is_honoured(hostile) -> None:
    started = time.monotonic()
    r = _fetcher(hostile, retries=3).get(f"http://{hostile}/busy")
    assert r.ok and r.body == b"ok"
    assert time.monotonic() - started >= 2.0  # two Retry-After: 1 waits


def test_503_storm_gives_up_with_a_reason(hostile) -> None:
    r = _fetcher(hostile, retries=2).get(f"http://{hostile}/storm")
    assert r.error == "http_503" and Hostile.hits["/storm"] == 3


def test_redirect_loop_detected(hostile) -> None:
    assert _fetcher(hostile).get(f"http://{hostile}/loop-a").error == "redirect_loop"


def test_redirect_to_unlisted_loopback_port_is_refused(hostile) -> None:
    r = _fetcher(hostile).get(f"http://{hostile}/to-private/9")
    assert r.error == "private_address"


def test_unlisted_private_target_is_refused_before_any_request() -> None:
    assert Fetcher(FetchConfig()).get("http://127.0.0.1:9/x").error == "private_address"
    assert Fetcher(FetchConfig()).get("ftp://example.com/x").error == "bad_scheme"


def test_compressed_bodies_are_decoded_and_capped_after_decoding(hostile) -> None:
    r = _fetcher(hostile).get(f"http://{hostile}/gzip")
    assert r.ok and r.body.decode() == "<p>café</p>"
    bomb = _fetcher(hostile, max_bytes=1_000_000).get(f"http://{hostile}/gzip-bomb")
    assert bomb.error == "too_large"


def test_short_body_is_a_connection_error(hostile) -> None:
    assert _fetcher(hostile).get(f"http://{hostile}/reset").error == "connection_error"


# --- hostile answers written byte for byte (tests.hostile_http.RawServer) ---------------------------------


@pytest.fixture(scope="module")
def raw():
    server = RawServer()
    yield server
    server.close()


def _raw_fetcher(server: RawServer, **kw) -> Fetcher:
    return _fetcher(f"127.0.0.1:{server.port}", **kw)


def test_unparseable_redirect_target_is_bad_redirect(raw) -> None:
    raw.routes["/bad-loc"] = Reply(response(302, [("Location", "http://[your-domain]/x")]))
    raw.routes["/no-loc"] = Reply(response(301))
    raw.routes["/bad-port"] = Reply(response(307, [("Location", "http://a.test:99999/")]))
    f = _raw_fetcher(raw)
    for path in ("/bad-loc", "/no-loc", "/bad-port"):
        r = f.get(f"{raw.base}{path}")
        assert (r.error, r.url) == ("bad_redirect", f"{raw.base}{path}")


def test_unreadable_retry_after_waits_the_backoff_and_retries(raw) -> None:
    raw.routes["/soon"] = Reply(response(503, [("Retry-After", "soon")], b"down"))
    started = time.monotonic()
    r = _raw_fetcher(raw, retries=2, backoff=0.05).get(f"{raw.base}/soon")
    assert r.error == "http_503" and raw.hits("/soon") == 3
    assert time.monotonic() - started < 1.0  # backoff 0.05 * (1, 2) with jitter, not a parse failure


@pytest.mark.parametrize(("value", "seconds"), [
    (None, 7.0), ("", 7.0), ("soon", 7.0), ("120", 120.0), ("-5", 0.0), ("1.5", 1.5), ("nan", 7.0),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("Fri, 31 Dec 9999 23:59:59 GMT", None), ("Sun, 99 Foo 1 1:1:1", 7.0),
])
def test_retry_after_reads_seconds_and_dates_and_defaults_otherwise(value, seconds) -> None:
    got = retry_after_seconds(value, 7.0)
    assert got == seconds if seconds is not None else got > 1e9  # a far-future date: more than max_retry_wait


def test_an_unexpected_exception_inside_a_fetch_is_fetch_error(raw) -> None:
    raw.routes["/hop"] = Reply(response(302, [("Location", "/landing")]))

    def broken_check(url: str) -> str | None:
        raise RuntimeError("a bug in a caller's hook")

    r = _raw_fetcher(raw).get(f"{raw.base}/hop", check=broken_check)
    assert r.error == "fetch_error"


def test_headers_trickled_a_byte_at_a_time_hit_the_total_deadline(raw) -> None:
    raw.routes["/trickle"] = Reply(response(200, [("X-Pad", "a" * 100)], b"hello"), trickle=0.2)
    started = time.monotonic()
    r = _raw_fetcher(raw, timeout=1.0).get(f"{raw.base}/trickle")
    assert r.error == "timeout"
    assert time.monotonic() - started < 1.5


def test_a_tls_server_that_never_answers_the_handshake_hits_the_deadline(raw) -> None:
    raw.routes.clear()  # the raw server reads a request head that a TLS client never sends: it stays silent
    started = time.monotonic()
    r = _raw_fetcher(raw, timeout=0.6, connect_timeout=5.0).get(f"https://127.0.0.1:{raw.port}/x")
    assert r.error == "timeout" and time.monotonic() - started < 1.2


def test_garbage_status_line_is_bad_response(raw) -> None:
    raw.routes["/garbage"] = Reply(b"\x16\x03\x01 not http at all\r\n\r\n")
    assert _raw_fetcher(raw).get(f"{raw.base}/garbage").error == "bad_response"


@pytest.mark.parametrize(("encoding", "wbits"), [("deflate", zlib.MAX_WBITS), ("deflate", -zlib.MAX_WBITS),
                                               ("gzip", 16 + zlib.MAX_WBITS)])  # zlib-wrapped, raw, gzip
def test_deflate_and_gzip_bombs_stop_at_the_byte_cap(raw, encoding, wbits) -> None:
    def squeeze(data: bytes) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, wbits)
        return c.compress(data) + c.flush()

    bomb = squeeze(b"\0" * 20_000_000)
    assert len(bomb) < 100_000
    raw.routes[f"/bomb{wbits}"] = Reply(response(200, [("Content-Encoding", encoding)], bomb))
    assert _raw_fetcher(raw, max_bytes=1_000_000).get(f"{raw.base}/bomb{wbits}").error == "too_large"
    raw.routes[f"/fine{wbits}"] = Reply(response(200, [("Content-Encoding", encoding)], squeeze(b"fine " * 100)))
    assert _raw_fetcher(raw).get(f"{raw.base}/fine{wbits}").body == b"fine " * 100


def test_redirect_check_is_asked_for_every_target_and_can_stop_it(raw) -> None:
    raw.routes["/r1"] = Reply(response(302, [("Location", "/r2")]))
    raw.routes["/r2"] = Reply(response(301, [("Location", f"{raw.base}/r3")]))
    asked: list[str] = []
    ok = _raw_fetcher(raw).get(f"{raw.base}/r1", check=lambda u: asked.append(u))
    assert ok.ok and ok.url == f"{raw.base}/r3" and ok.redirects == 2
    assert asked == [f"{raw.base}/r2", f"{raw.base}/r3"]
    before = raw.hits("/r3")
    stopped = _raw_fetcher(raw).get(f"{raw.base}/r1", check=lambda u: "robots_disallowed" if u.endswith("/r3") else None)
    assert (stopped.error, stopped.url, stopped.redirects) == ("robots_disallowed", f"{raw.base}/r3", 1)
    assert raw.hits("/r3") == before  # the refused target was never fetched


def test_a_host_whose_first_address_refuses_is_reached_at_its_next_one(raw, monkeypatch) -> None:
    attempts = loopback_only(monkeypatch)
    monkeypatch.setattr("socket.getaddrinfo", FakeDNS(["127.0.0.3", "127.0.0.1"]))
    r = _fetcher("127.0.0.0/8").get(f"http://two.test:{raw.port}/whatever")
    assert r.ok and attempts == [("127.0.0.3", raw.port), ("127.0.0.1", raw.port)]


def test_repeated_x_robots_tag_lines_keep_their_agent_scopes(raw) -> None:
    raw.routes["/img"] = Reply(response(200, [("X-Robots-Tag", "otherbot: noindex"), ("X-Robots-Tag", "noimageindex"),
                                              ("Vary", "a"), ("Vary", "b")], b"img"))
    r = _raw_fetcher(raw).get(f"{raw.base}/img")
    assert r.headers["x-robots-tag"] == "otherbot: noindex\nnoimageindex" and r.headers["vary"] == "a, b"
    assert xrobots_forbids(r.headers["x-robots-tag"]) == "noimageindex"


def test_transient_errors_are_named_bare_or_prefixed() -> None:
    for reason in ("timeout", "connection_error", "dns_error", "http_429", "http_503", "http_500",
                   "robots_unreachable", "download/timeout", "crawl/http_502", "download/robots_unreachable"):
        assert is_transient(reason), reason
    for reason in (None, "", "too_large", "private_address", "unknown_host", "http_404", "robots_disallowed",
                   "download/bad_redirect", "fetch_error", "crawl/http_4299"):
        assert not is_transient(reason), reason
    assert {"timeout", "connection_error", "http_429", "http_503", "robots_unreachable"} <= TRANSIENT_ERRORS


# --- robots.txt --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "error", "verdict"), [
    (200, None, "parsed"), (404, None, "allow"), (401, None, "allow"), (429, None, "unreachable"),
    (500, None, "unreachable"), (503, None, "unreachable"), (0, "http_503", "unreachable"),
    (0, "timeout", "unreachable"), (0, "connection_error", "unreachable"), (0, "too_many_redirects", "allow"),
    (0, "private_address", "disallow"), (0, "too_large", "disallow"),
])
def test_robots_outcome_follows_rfc_9309(status, error, verdict) -> None:
    rules = robots_outcome(status, b"User-agent: *\nDisallow: /private\n", error)
    got = ("unreachable" if rules is None else "allow" if rules is ALLOW_ALL else
           "disallow" if rules is DISALLOW_ALL else "parsed")
    assert got == verdict


def test_crawl_delay_is_capped_and_the_host_paced_at_the_cap(raw) -> None:
    raw.routes["/robots.txt"] = Reply(response(200, [], b"User-agent: *\nCrawl-delay: 86400\n"))
    f = _raw_fetcher(raw, max_crawl_delay=0.4)
    robots = RobotsCache(f)
    assert robots.check(f"{raw.base}/page") is None
    assert f.pacer.delays[f"127.0.0.1:{raw.port}"] == 0.4
    assert RobotsCache(_raw_fetcher(raw)).fetcher.cfg.max_crawl_delay == 30.0  # the default cap
    started = time.monotonic()
    assert f.get(f"{raw.base}/a").ok and f.get(f"{raw.base}/b").ok
    assert 0.4 <= time.monotonic() - started < 2.0  # the capped pace, not a day


def test_unreachable_robots_is_transient_and_fetched_again_after_the_interval(raw) -> None:
    raw.routes["/robots.txt"] = Reply(response(503, [], b"down"))
    now = [0.0]
    robots = RobotsCache(_raw_fetcher(raw), retry_interval=60.0, clock=lambda: now[0])
    hits = raw.hits("/robots.txt")
    assert robots.check(f"{raw.base}/a") == "robots_unreachable" and not robots.allowed(f"{raw.base}/a")
    now[0] = 59.0
    assert robots.check(f"{raw.base}/b") == "robots_unreachable" and raw.hits("/robots.txt") == hits + 1
    raw.routes["/robots.txt"] = Reply(response(200, [], b"User-agent: *\nDisallow: /private\n"))
    now[0] = 61.0
    assert robots.check(f"{raw.base}/b") is None and raw.hits("/robots.txt") == hits + 2
    assert robots.check(f"{raw.base}/private/x") == "robots_disallowed"
    now[0] = 10_000.0
    assert robots.check(f"{raw.base}/c") is None and raw.hits("/robots.txt") == hits + 2  # parsed: kept


def test_robots_behind_a_refused_connection_is_unreachable() -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    robots = RobotsCache(_fetcher(f"127.0.0.1:{port}"))
    assert robots.check(f"http://127.0.0.1:{port}/x") == "robots_unreachable"
    assert robots.check("http://[broken/x") is None  # no robots.txt to name: the fetch itself names the fault


@pytest.mark.parametrize(("value", "kw", "expected"), [
    (None, {}, None), ("", {}, None), ("noimageindex", {}, "noimageindex"), ("NoImageIndex", {}, "noimageindex"),
    ("noindex, nofollow", {}, None), ("noai", {}, "noai"), ("noindex,noimageai", {}, "noimageai"),
    ("noindex noimageindex", {}, "noimageindex"), ("googlebot: noimageindex", {}, None),
    ("webclip: noimageindex", {}, "noimageindex"), ("WebClip: noai", {}, "noai"),
    ("otherbot: noindex, noimageindex", {}, None),  # the agent prefix scopes the rest of the line
    ("otherbot: noindex\nnoimageindex", {}, "noimageindex"),  # a new header line starts unscoped
    ("otherbot: noai\nwebclip: noimageai", {}, "noimageai"), ("max-image-preview: none, noai", {}, "noai"),
    ("unavailable_after: Friday, 25 Jun 2010 15:00:00 PST", {}, None), ("*: noai", {}, "noai"),
    ("noindex", {"tokens": ("noindex",)}, "noindex"), ("noindex", {}, None),
    ("img2dataset: noai", {"agent": "img2dataset"}, "noai"), ("img2dataset: noai", {}, None),
])
def test_x_robots_tag_opt_outs(value, kw, expected) -> None:
    assert xrobots_forbids(value, **kw) == expected
