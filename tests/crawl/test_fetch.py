"""The polite fetcher against real loopback servers with hostile behaviours."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webclip.fetch import FetchConfig, Fetcher

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
