"""Generated hostile answers and URLs against the fetcher and its address guard (hypothesis, fixed seed).

Invariants: ``Fetcher.get`` never raises and never hits its own catch-all (``fetch_error``: an unforeseen
exception), returns within its deadlines, names every failure with a short reason, never holds more than
``max_bytes``; a well-formed answer comes back byte for byte. ``AddressGuard.target`` raises nothing but
``Refused`` and never hands back a header-breaking host or path. ``WEBCLIP_FUZZ_EXAMPLES=N`` runs N examples per
test (``make fuzz``); the default keeps the file well under 30 s.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import os
import re
import socket
import time
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile_http import RawServer, Reply, loopback_only
from webclip.fetch import FetchConfig, Fetcher
from webclip.netguard import AddressGuard, Refused, is_public

EXAMPLES = int(os.environ.get("WEBCLIP_FUZZ_EXAMPLES", "0"))
REASON = re.compile(r"[a-z][a-z0-9_]{1,30}")
CFG = {"timeout": 0.3, "connect_timeout": 0.3, "retries": 1, "backoff": 0.01, "max_retry_wait": 0.05,
       "max_redirects": 3, "max_bytes": 20_000, "per_host_delay": 0.0}
# every hop may use its whole deadline plus the longest wait between attempts, plus scheduling slack
BOUND = (CFG["max_redirects"] + 1) * (CFG["retries"] + 1) * (CFG["timeout"] + CFG["max_retry_wait"]) + 1.5


def fuzz(default: int):  # noqa: ANN201
    """Fixed-seed settings; WEBCLIP_FUZZ_EXAMPLES overrides the example count for a soak."""
    return settings(derandomize=True, database=None, deadline=None, max_examples=EXAMPLES or default,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def server():
    s = RawServer()
    yield s
    s.close()


def _squeeze(data: bytes, wbits: int) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return c.compress(data) + c.flush()


PAYLOAD = st.binary(max_size=3000)
BODIES = st.one_of(
    PAYLOAD, PAYLOAD.map(gzip.compress), PAYLOAD.map(lambda b: _squeeze(b, zlib.MAX_WBITS)),
    PAYLOAD.map(lambda b: _squeeze(b, -zlib.MAX_WBITS)),
    st.tuples(PAYLOAD.map(gzip.compress), st.integers(0, 60)).map(lambda t: t[0][:t[1]]),  # truncated gzip
    st.just(gzip.compress(b"\0" * 400_000)), st.just(_squeeze(b"\0" * 400_000, zlib.MAX_WBITS)),  # bombs
    st.tuples(PAYLOAD, st.integers(1, 500)).map(  # chunked framing, sometimes with a lying chunk size
        lambda t: b"".join(b"%x\r\n%s\r\n" % (len(t[0][i:i + t[1]]) + (i == 0 and t[1] % 3 == 0), t[0][i:i + t[1]])
                           for i in range(0, len(t[0]), t[1])) + b"0\r\n\r\n"),
)
TEXT = st.text(max_size=40).map(lambda s: s.encode("utf-8"))
CODES = st.sampled_from([200, 200, 200, 204, 206, 301, 302, 303, 307, 308, 404, 429, 500, 503, 100, 199, 999])
STATUS = st.one_of(
    *[CODES.map(lambda c: b"HTTP/1.1 %d X" % c)] * 3,  # three in five status lines are well-formed
    st.sampled_from([b"HTTP/1.0 200 OK", b"HTTP/2 200", b"HTTP/1.1 abc OK", b"ICY 200 OK", b"", b"HTTP/1.1 200",
                     b"HTTP/1.1 302 Found"]),
    st.binary(max_size=40).filter(lambda b: b"\n" not in b),
)


def header_values(base: str, port: int, length: int) -> dict[str, st.SearchStrategy[bytes]]:
    """Per header name, the hostile values it may carry."""
    def pick(*values: str) -> st.SearchStrategy[bytes]:
        return st.one_of(st.sampled_from([v.encode() for v in values]), TEXT)

    return {
        "Location": pick(f"{base}/ok", "/ok", "ok", f"//127.0.0.1:{port}/ok", "http://[your-domain]/x",
                         "http://a.test:99999/", "ftp://x/", "http://127.0.0.1:1/", f"http://rebind.test:{port}/ok",
                         "", " ", "\t/ok", "/%zz", f"http://[::1]:{port}/", "javascript:alert(1)", "http://169.254.169.254/"),
        "Retry-After": pick("0", "1", "-1", "soon", "nan", "inf", "1e999", "Wed, 21 Oct 2015 07:28:00 GMT",
                            "Fri, 31 Dec 9999 23:59:59 GMT", "99999999999999999999999"),
        "Content-Type": pick("text/html; charset=utf-8", "text/html; charset=x-bogus", "image/jpeg",
                             "text/html; charset=", "text/plain; charset=utf-8; charset=koi8-r"),
        "Content-Encoding": pick("gzip", "deflate", "br", "identity", "gzip, deflate", "x-gzip", "zstd", "GZIP",
                                 "", "gzip, gzip"),
        "Content-Length": pick(str(length), str(length + 10), str(max(0, length - 10)), "-1", "abc",
                               f"{length}, {length}", f"{length}, {length + 1}", "99999999999999999999", " "),
        "Transfer-Encoding": pick("chunked", "gzip, chunked", "identity", "bogus"),
        "X-Robots-Tag": pick("noimageindex", "otherbot: noai", "max-snippet: 5, noai"),
        "Connection": pick("close", "keep-alive"),
    }


BENIGN = ("Content-Type", "X-Robots-Tag", "Retry-After", "Location", "Connection")


@st.composite
def answers(draw: st.DrawFn, base: str, port: int) -> tuple[Reply, bytes, bool]:
    """(raw reply, its body, whether it is a well-formed 200 whose body must come back as sent)."""
    tidy = draw(st.integers(0, 3)) == 0  # a quarter are well-formed 200s: the oracle's share
    status, body = b"HTTP/1.1 200 X" if tidy else draw(STATUS), draw(BODIES)
    values = header_values(base, port, len(body))
    names = draw(st.lists(st.sampled_from(BENIGN if tidy else sorted(values)), max_size=6))
    lines = [n.encode() + b": " + draw(values[n]) for n in names]
    if not tidy:
        lines += draw(st.lists(st.binary(max_size=30), max_size=1))  # a garbage line
    auto_length = tidy or draw(st.booleans())
    if auto_length:
        lines.append(b"Content-Length: %d" % len(body))
    reply = Reply(status + b"\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n" + body,
                  trickle=draw(st.sampled_from([0.0] * 15 + [0.01])), step=256,
                  hold=0.0 if tidy else draw(st.sampled_from([0.0] * 9 + [0.5])))
    clean = tidy and len(body) <= CFG["max_bytes"] and not any(b"\r" in line or b"\n" in line for line in lines)
    return reply, body, clean


def _check_invariants(r, started: float) -> None:  # noqa: ANN001
    assert time.monotonic() - started < BOUND
    assert r.error != "fetch_error"  # the catch-all fired: an exception nothing else foresaw
    assert r.error is None or REASON.fullmatch(r.error), r.error
    assert len(r.body) <= CFG["max_bytes"]


COUNTER = itertools.count()


@pytest.mark.parametrize("_", [0])
def test_fetcher_survives_generated_hostile_answers(server, monkeypatch, _) -> None:
    loopback_only(monkeypatch)
    fetcher = Fetcher(FetchConfig(allow_private=[f"127.0.0.1:{server.port}"], **CFG))
    fetcher.guard.resolve = lambda host, port: ["127.0.0.1"]  # rebind.test and friends: never real DNS

    @fuzz(150)
    @given(answers(server.base, server.port))
    def run(answer: tuple[Reply, bytes, bool]) -> None:
        reply, body, clean = answer
        path = f"/fz/{next(COUNTER)}"
        server.routes[path] = reply
        started = time.monotonic()
        r = fetcher.get(f"{server.base}{path}")
        _check_invariants(r, started)
        if clean:
            assert r.ok and r.body == body, r.error

    run()


HOSTS = st.one_of(
    st.sampled_from(["a.test", "rebind.test", "127.0.0.1", "2130706433", "0x7f.1", "0177.0.0.1", "127.1",
                     "[::1]", "[::ffff:127.0.0.1]", "[fe80::1%25eth0]", "[your-domain]", "[::1", "::1", "",
                     "bücher.example", "xn--", "a..b", "%31%32%37.0.0.1", "a.test.", "user@a.test", "a\\@b.test",
                     "169.254.169.254", "[64:ff9b::7f00:1]", "[2002:7f00:1::]", "100.64.0.1", "a" * 300]),
    st.text(max_size=20),
)


@st.composite
def urls(draw: st.DrawFn, port: int) -> str:
    """A URL put together from hostile parts, or plain generated text."""
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "ftp", "javascript", "", "http:", "file"]))
    port_part = draw(st.sampled_from(["", f":{port}", f":{port}", ":0", ":99999", ":", ":-1", ":8o", ":443"]))
    built = f"{scheme}://{draw(HOSTS)}{port_part}{draw(st.text(max_size=20))}"
    return draw(st.one_of(st.just(built), st.text(max_size=60), st.just(f"http://127.0.0.1:{port}/ok")))


def _fake_resolve(host: str, port: int) -> list[str]:
    """Deterministic answers of every kind, good and hostile, chosen by the name's hash (never real DNS)."""
    pick = hashlib.sha256(host.encode("utf-8", "surrogatepass")).digest()[0] % 9
    if pick == 7:
        raise socket.gaierror(socket.EAI_NONAME, "no such name")
    if pick == 8:
        raise socket.gaierror(socket.EAI_AGAIN, "try again")
    return [["8.8.8.8"], ["10.0.0.1"], ["::ffff:127.0.0.1"], ["2002:a00:1::1"], ["93.184.216.34", "127.0.0.1"],
            ["not-an-address"], []][pick]


@fuzz(400)
@given(urls(1234))
def test_guard_raises_only_refused_and_never_hands_back_a_header_breaking_target(url: str) -> None:
    guard = AddressGuard(["127.0.0.1:1234"], resolve=_fake_resolve)
    try:
        t = guard.target(url)
    except Refused as e:
        assert e.reason in {"bad_url", "bad_scheme", "private_address", "unknown_host", "dns_error"}
        return
    assert t.scheme in ("http", "https") and 1 <= t.port <= 65535 and t.addresses
    assert t.path.startswith("/") and not re.search(r"[\s\x00-\x1f\x7f]", t.path + t.host_header)
    assert all(is_public(a) or (a == "127.0.0.1" and t.port == 1234) for a in t.addresses)


@pytest.mark.parametrize("_", [0])
def test_fetcher_survives_generated_urls(server, monkeypatch, _) -> None:
    attempts = loopback_only(monkeypatch)
    fetcher = Fetcher(FetchConfig(allow_private=[f"127.0.0.1:{server.port}"], **CFG))
    fetcher.guard.resolve = lambda host, port: ["127.0.0.1"]

    @fuzz(100)
    @given(urls(server.port))
    def run(url: str) -> None:
        started = time.monotonic()
        _check_invariants(fetcher.get(url), started)

    run()
    assert all(a == ("127.0.0.1", server.port) for a in attempts)  # nothing but the allowed server was dialled
