"""A second reading of the fetcher, its address guard and robots.txt against references their author did not write.

References: RFC 9309 (robots.txt), the IANA IPv6 Address Space and Special-Purpose registries, RFC 9110 (HTTP
semantics: field values, content codings, HTTP-date), Google's robots meta / X-Robots-Tag rules, and the
robots.txt parser Google publishes (google/robotstxt). Loopback servers only; names are resolved in-process.
"""

from __future__ import annotations

import datetime
import email.utils
import gzip
import socket
import time

import pytest
from hypothesis import example, given

from tests.hostile_http import RawServer, Reply, loopback_only, response
from tests.webclip.test_fetch_fuzz import fuzz, urls
from webclip.fetch import FetchConfig, Fetcher, host_key, retry_after_seconds
from webclip.netguard import AddressGuard, Refused, is_public, parse
from webclip.robots import RobotsCache, robots_outcome, robots_url, xrobots_forbids


@pytest.fixture
def server():
    s = RawServer()
    yield s
    s.close()


def _fetcher(s: RawServer, **kw) -> Fetcher:
    return Fetcher(FetchConfig(**{"allow_private": [f"127.0.0.1:{s.port}"], "per_host_delay": 0.0, "retries": 0,
                                  **kw}))


# --- HTTP answers (RFC 9110) -------------------------------------------------------------------------------


def test_a_content_length_of_non_ascii_digits_is_read_not_a_fetch_error(server) -> None:
    # "\xb2" (superscript two) is a digit to str.isdigit but not to int(): the catch-all fired on it
    server.routes["/sup2"] = Reply(b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\nConnection: close\r\n\r\nab")
    r = _fetcher(server).get(f"{server.base}/sup2")
    assert r.error is None and r.body == b"ab"


@pytest.mark.parametrize("coding", ["xyz", "compress", "aes128gcm", "gzip, xyz"])
def test_a_content_coding_we_cannot_undo_drops_the_body(server, coding) -> None:
    # RFC 9110 8.4: the codings were applied in order; bytes still under one we cannot undo are not the content
    server.routes["/enc"] = Reply(response(200, [("Content-Encoding", coding)], b"\x1f\x9d\x90coded"))
    r = _fetcher(server).get(f"{server.base}/enc")
    assert (r.status, r.error, r.body) == (200, "bad_encoding", b"")


@pytest.mark.parametrize("coding", ["gzip ", "GZIP", "identity, gzip", "gzip, identity", "gzip,", "x-gzip"])
def test_content_codings_are_read_as_a_list_with_ows_and_identity(server, coding) -> None:
    # RFC 9110 5.5/5.6.1: OWS around values and empty list elements are not part of the value; identity is no coding
    server.routes["/gz"] = Reply(response(200, [("Content-Encoding", coding)], gzip.compress(b"hello")))
    r = _fetcher(server).get(f"{server.base}/gz")
    assert r.error is None and r.body == b"hello"


def test_a_location_in_utf8_bytes_is_followed_to_the_utf8_url(server) -> None:
    # Location bytes are UTF-8 on the web (browsers; requests re-reads http.client's latin-1 text as UTF-8)
    server.routes["/to-cafe"] = Reply(response(302, [("Location", "/caf\u00c3\u00a9")]))  # the bytes b"/caf\xc3\xa9"
    server.routes["/caf%C3%A9"] = Reply(response(200, [], b"cafe"))
    r = _fetcher(server).get(f"{server.base}/to-cafe")
    assert r.ok and r.body == b"cafe" and server.hits("/caf%C3%83%C2%A9") == 0


def test_a_location_that_is_not_utf8_is_still_followed(server) -> None:
    server.routes["/to-latin"] = Reply(response(302, [("Location", "/caf\u00e9")]))  # the byte b"\xe9" alone
    r = _fetcher(server).get(f"{server.base}/to-latin")
    assert r.error is None and r.redirects == 1


@pytest.fixture
def tokyo(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_retry_after_dates_are_gmt_whatever_the_local_zone(tokyo) -> None:
    # RFC 9110 5.6.7: all three HTTP-date forms are GMT; asctime's carries no zone and was read as local time
    at = datetime.datetime.fromtimestamp(time.time() + 3600, datetime.UTC)
    for form in (email.utils.format_datetime(at, usegmt=True), at.strftime("%A, %d-%b-%y %H:%M:%S GMT"),
                 at.strftime("%a %b %e %H:%M:%S %Y")):
        assert 3590 < retry_after_seconds(form, -1.0) <= 3600, form


# --- Pacing and robots.txt keyed by the host the request goes to ---------------------------------------------


def test_host_key_is_the_host_urllib3_connects_to() -> None:
    assert host_key("http://A.Test/x") == host_key("http://u:p@a.test:80/y") == "a.test"
    assert host_key("https://a.test:443/") == "a.test" and host_key("https://a.test:8443/") == "a.test:8443"
    assert host_key("http://evil.test\\@victim.test/x") == "evil.test"  # urlsplit would say victim.test
    assert host_key("http://[::1]:8080/") == "[::1]:8080"


def test_one_host_is_paced_as_one_whatever_userinfo_or_backslash_the_url_carries(server) -> None:
    f = _fetcher(server, per_host_delay=0.3)
    started = time.monotonic()
    for url in (f"{server.base}/a", f"http://x@127.0.0.1:{server.port}/b", f"{server.base}\\@other.test/c"):
        assert f.get(url).ok
    assert time.monotonic() - started >= 0.6  # three starts to one host: two delays


def test_robots_txt_is_the_one_of_the_host_the_request_goes_to(server) -> None:
    server.routes["/robots.txt"] = Reply(response(200, [], b"User-agent: *\nDisallow: /\n"))
    robots = RobotsCache(_fetcher(server))
    sneaky = f"{server.base}\\@victim.test/secret"  # urllib3 sends it to 127.0.0.1; urlsplit names victim.test
    assert robots.check(sneaky) == "robots_disallowed"
    assert robots.check(f"http://someone@127.0.0.1:{server.port}/x") == "robots_disallowed"
    assert server.hits("/robots.txt") == 1  # one robots.txt per host, not one per spelling of it


@fuzz(300)
@given(urls(8080))
@example("http://a.test\\@b.test:8080/x").via("urllib3 stops the authority at a backslash; urlsplit does not")
@example("HTTP://user:pw@A.test:80/x").via("userinfo, case and an explicit default port")
def test_robots_txt_is_named_on_the_scheme_host_and_port_the_guard_sends_to(url: str) -> None:
    try:
        t = AddressGuard(resolve=lambda host, port: ["93.184.216.34"]).target(url)
    except Refused:
        return
    r = parse(robots_url(url))
    assert (r.scheme, (r.host or "").strip("[]"), r.port or (443 if r.scheme == "https" else 80), r.path, r.auth) == (
        t.scheme, t.host, t.port, "/robots.txt", None)


def test_a_robots_txt_starting_with_a_byte_order_mark_is_obeyed(server) -> None:
    # google/robotstxt skips a leading UTF-8 BOM; left in, it hid the first User-agent line and allowed all
    body = b"\xef\xbb\xbfUser-agent: *\nDisallow: /\n"
    assert not robots_outcome(200, body, None).can_fetch("http://a.test/x", "webclip")
    server.routes["/robots.txt"] = Reply(response(200, [], body))
    assert RobotsCache(_fetcher(server)).check(f"{server.base}/x") == "robots_disallowed"


def test_robots_txt_is_parsed_up_to_500_kib_whatever_the_page_byte_cap(server) -> None:
    # RFC 9309 2.5: the parsing limit MUST be at least 500 KiB; content past the limit is ignored, not fatal
    rules = b"User-agent: *\nDisallow: /private\n"
    server.routes["/robots.txt"] = Reply(response(200, [], rules + b"# padding\n" * 30_000))  # 300 KB
    robots = RobotsCache(_fetcher(server, max_bytes=100_000))
    assert robots.check(f"{server.base}/public") is None
    assert robots.check(f"{server.base}/private/x") == "robots_disallowed"


def test_a_robots_txt_longer_than_the_byte_cap_is_read_to_the_limit_not_disallow_all(server) -> None:
    rules = b"User-agent: *\nDisallow: /private\n"
    server.routes["/robots.txt"] = Reply(response(200, [], rules + b"Disallow: /late\n" + b"#" * 2_000_000))
    robots = RobotsCache(_fetcher(server, max_bytes=1_000_000))
    assert robots.check(f"{server.base}/public") is None
    assert robots.check(f"{server.base}/private") == "robots_disallowed"


def test_a_robots_404_with_an_unreadable_body_still_allows(server) -> None:
    # RFC 9309 2.3.1.3: the status decides; the body of a 4xx does not matter
    server.routes["/robots.txt"] = Reply(response(404, [("Content-Encoding", "xyz")], b"nope"))
    assert RobotsCache(_fetcher(server)).check(f"{server.base}/x") is None


# --- X-Robots-Tag (Google's robots meta tag and X-Robots-Tag rules) --------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("none", "noindex"), ("NONE", "noindex"), ("otherbot: none", None), ("webclip: none", "noindex"),
    ("all", None), ("nofollow", None),
])
def test_none_is_noindex_and_nofollow(value, expected) -> None:
    assert xrobots_forbids(value, tokens=("noindex",)) == expected
    assert xrobots_forbids(value) is None  # the default image tokens do not include noindex


# --- Addresses (IANA IPv6 Address Space: only 2000::/3 is allocated global unicast) ----------------------------


@pytest.mark.parametrize("address", [
    "::ffff:0:7f00:1", "::ffff:0:a9fe:a9fe",  # IPv4-translated (SIIT, RFC 2765 2.1 / RFC 6145)
    "1000::1", "4000::1", "8000::1", "e000::1", "f000::1", "fe00::1",  # reserved by the IETF
])
def test_ipv6_outside_the_allocated_space_is_refused(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize("address", ["2606:4700:4700::1111", "64:ff9b::808:808", "::ffff:8.8.8.8", "3fff:ffff::1"])
def test_ipv6_global_unicast_and_nat64_of_public_still_pass(address: str) -> None:
    assert is_public(address)  # 3fff:ffff::1: past the 3fff::/20 documentation block, inside 2000::/3


def _numeric_only(host, port, family=0, type=0, proto=0, flags=0):  # noqa: ANN001, A002
    """The system's reading of a host, numeric forms only (AI_NUMERICHOST: never a DNS query)."""
    return _real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)


_real_getaddrinfo = socket.getaddrinfo


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "017700000001", "0177.0.0.1", "0x7f000001", "0"])
def test_decimal_octal_and_hex_ipv4_literals_reach_no_private_address(server, monkeypatch, host) -> None:
    attempts = loopback_only(monkeypatch)
    monkeypatch.setattr("socket.getaddrinfo", _numeric_only)
    assert Fetcher(FetchConfig(retries=0)).get(f"http://{host}:{server.port}/x").error == "private_address"
    assert attempts == [] and server.hits("/x") == 0


def test_proxy_variables_are_not_a_way_around_the_guard(server, monkeypatch) -> None:
    proxy = RawServer()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy.base)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert _fetcher(server).get(f"{server.base}/direct").ok and server.hits("/direct") == 1
        assert Fetcher(FetchConfig(retries=0)).get("http://127.0.0.1:9/x").error == "private_address"
        assert proxy.seen == []
    finally:
        proxy.close()
