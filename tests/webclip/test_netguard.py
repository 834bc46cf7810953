"""The SSRF guard: which addresses are refused (IANA special-purpose registries), and that a fetch connects to
exactly the address that was checked (DNS rebinding), over plain HTTP and TLS."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.hostile_http import FakeDNS, RawServer, Reply, loopback_only, response
from webclip.fetch import FetchConfig, Fetcher
from webclip.netguard import AddressGuard, Refused, is_public, unwrap

# Expectations written from the IANA IPv4/IPv6 Special-Purpose Address Registries and the transition RFCs
# (6052 NAT64, 8215 local-use NAT64, 3056 6to4, 4380 Teredo, 4291 IPv4-mapped), not from the guard's table.
REFUSED = [
    "0.0.0.0", "0.1.2.3", "10.1.2.3", "100.64.0.1", "100.127.255.254", "127.0.0.1", "127.255.255.254",
    "169.254.169.254", "169.254.0.1", "172.16.0.1", "172.31.255.255", "192.0.0.8", "192.0.0.170",
    "192.0.0.9",  # PCP anycast: IANA-global, refused with its /24 on purpose
    "192.0.2.1", "198.51.100.7", "203.0.113.9", "192.88.99.1", "192.168.1.1", "198.18.0.1", "198.19.255.255",
    "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "::", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::7f00:1",
    "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::6440:1",  # NAT64 to loopback, 10/8, metadata, CGNAT
    "64:ff9b:1::1", "64:ff9b:1:808:8:800::",  # local-use NAT64 is not global, whatever it wraps
    "100::1", "2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:db8::1", "3fff::1", "5f00::1",
    "2002:7f00:1::1", "2002:a00:1::1", "2002:a9fe:a9fe::", "2002:6440:1::",  # 6to4 wrapping private ones
    "fc00::1", "fd00::1", "fd12:3456::1", "fd00:ec2::254", "fe80::1", "fe80::1%eth0", "fec0::1", "ff02::1",
]
PUBLIC = [
    "8.8.8.8", "1.1.1.1", "93.184.216.34", "11.0.0.1", "100.63.255.255", "100.128.0.0", "172.15.255.255",
    "172.32.0.0", "192.167.255.255", "192.169.0.1", "169.255.0.1", "198.20.0.1",
    "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "2606:4700:4700::1111", "2001:4860:4860::8888",
    "2620:fe::fe",
]


@pytest.mark.parametrize("address", REFUSED)
def test_not_globally_routable_addresses_are_refused(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_globally_routable_addresses_pass(address: str) -> None:
    assert is_public(address)


@pytest.mark.parametrize(("wrapped", "inner"), [
    ("::ffff:192.0.2.33", ["192.0.2.33"]),  # RFC 4291 2.5.5.2
    ("64:ff9b::c000:221", ["64:ff9b::c000:221", "192.0.2.33"]),  # RFC 6052 2.4, /96
    ("64:ff9b:1:c000:2:2100::", ["64:ff9b:1:c000:2:2100::", "192.0.2.33"]),  # RFC 6052 2.2 /48 layout
    ("2002:c000:221::1", ["2002:c000:221::1", "192.0.2.33"]),  # RFC 3056
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "65.54.227.120",
                                              "192.0.2.45"]),  # RFC 4380 section 4's example
])
def test_transition_forms_unwrap_to_the_ipv4_they_carry(wrapped: str, inner: list[str]) -> None:
    assert unwrap(ipaddress.ip_address(wrapped)) == [ipaddress.ip_address(a) for a in inner]


def _guard(answer: list[str], allow: tuple[str, ...] = ()) -> AddressGuard:
    return AddressGuard(list(allow), resolve=lambda host, port: answer)


def test_allow_rules_lift_the_guard_only_for_what_they_name() -> None:
    assert _guard(["127.0.0.1"], ("127.0.0.0/8",)).target("http://a.test/x").addresses == ("127.0.0.1",)
    assert _guard(["::ffff:127.0.0.1"], ("127.0.0.1",)).target("http://a.test/").addresses == ("::ffff:127.0.0.1",)
    assert _guard(["10.0.0.1"], ("a.test:8080",)).target("http://a.test:8080/").port == 8080
    for answer, allow, url in [(["127.0.0.1"], ("10.0.0.0/8",), "http://a.test/"),
                               (["10.0.0.1"], ("a.test:8080",), "http://a.test:8081/"),
                               (["8.8.8.8", "100.64.0.1"], (), "http://a.test/"),  # one bad answer is enough
                               (["64:ff9b::7f00:1"], ("127.0.0.1",), "http://a.test/")]:
        with pytest.raises(Refused) as e:
            _guard(answer, allow).target(url)
        assert e.value.reason == "private_address"


def test_target_keeps_the_name_for_host_header_and_tls() -> None:
    t = _guard(["93.184.216.34"]).target("https://Bücher.Example:8443/a b?q=1#frag")
    assert (t.scheme, t.host, t.port, t.host_header, t.path) == (
        "https", "xn--bcher-kva.example", 8443, "xn--bcher-kva.example:8443", "/a%20b?q=1")
    assert _guard(["::1"], ("::1",)).target("http://[::1]/").host_header == "[::1]"


@pytest.mark.parametrize(("url", "reason"), [
    ("http://[your-domain]/x", "bad_url"), ("ftp://a.test/", "bad_scheme"), ("a.test/x", "bad_scheme"),
    ("http://a.test:0/", "bad_url"), ("http://a.test:99999/", "bad_url"), ("http:///x", "bad_url"),
])
def test_malformed_urls_are_refused_by_name(url: str, reason: str) -> None:
    with pytest.raises(Refused) as e:
        _guard(["8.8.8.8"]).target(url)
    assert e.value.reason == reason


@pytest.fixture(scope="module")
def server():
    s = RawServer()
    yield s
    s.close()


def _fetcher(*allow: str, **kw) -> Fetcher:
    return Fetcher(FetchConfig(**{"allow_private": list(allow), "per_host_delay": 0.0, "retries": 0, **kw}))


def test_ipv6_literals_and_answers_connect_over_ipv6(monkeypatch) -> None:
    try:
        v6 = RawServer("::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    attempts = loopback_only(monkeypatch)
    monkeypatch.setattr("socket.getaddrinfo", FakeDNS(["::1"]))
    try:
        assert _fetcher(f"[::1]:{v6.port}").get(f"{v6.base}/six").body == b"ok"
        assert _fetcher(f"[::1]:{v6.port}").get(f"http://six.test:{v6.port}/six").body == b"ok"
        assert [s.headers["host"] for s in v6.seen] == [f"[::1]:{v6.port}", f"six.test:{v6.port}"]
        assert attempts == [("::1", v6.port), ("::1", v6.port)]
    finally:
        v6.close()


def test_rebinding_allowed_answer_then_other_one_connects_only_to_the_checked_address(server, monkeypatch) -> None:
    attempts = loopback_only(monkeypatch)
    dns = FakeDNS(["127.0.0.1"], ["10.0.0.1"])
    monkeypatch.setattr("socket.getaddrinfo", dns)
    f = _fetcher(f"127.0.0.1:{server.port}")
    r = f.get(f"http://rebind.test:{server.port}/rebind-a")
    assert r.ok and r.body == b"ok"
    assert dns.asked == ["rebind.test"]  # one lookup: nothing resolved the name a second time
    assert attempts == [("127.0.0.1", server.port)]
    assert server.seen[-1].headers["host"] == f"rebind.test:{server.port}"
    again = f.get(f"http://rebind.test:{server.port}/rebind-a")  # the next lookup answers 10.0.0.1: refused
    assert again.error == "private_address" and server.hits("/rebind-a") == 1 and len(attempts) == 1


def test_rebinding_public_answer_then_loopback_never_reaches_loopback(server, monkeypatch) -> None:
    attempts = loopback_only(monkeypatch)
    dns = FakeDNS(["1.1.1.1"], ["127.0.0.1"])
    monkeypatch.setattr("socket.getaddrinfo", dns)
    r = _fetcher(retries=1, backoff=0.01).get(f"http://rebind.test:{server.port}/rebind-b")
    assert dns.asked == ["rebind.test", "rebind.test"]  # one lookup per attempt, each checked
    assert attempts == [("1.1.1.1", server.port)]  # attempt 1 went to the checked public address only
    assert r.error == "private_address"  # attempt 2's loopback answer was refused before any connection
    assert server.hits("/rebind-b") == 0


def test_a_redirect_to_a_rebinding_name_is_checked_on_its_own_answer(server, monkeypatch) -> None:
    loopback_only(monkeypatch)
    monkeypatch.setattr("socket.getaddrinfo", FakeDNS(["169.254.169.254"]))
    server.routes["/to-meta"] = Reply(response(302, [("Location", "http://metadata.test/latest/")]))
    r = _fetcher(f"127.0.0.1:{server.port}").get(f"{server.base}/to-meta")
    assert (r.error, r.url, r.redirects) == ("private_address", "http://metadata.test/latest/", 1)


def _cert(name: str) -> tuple[bytes, bytes, bytes]:
    """A CA and a leaf certificate for ``name`` signed by it: (CA PEM, leaf PEM, leaf key PEM)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webclip test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (ca.public_bytes(pem), leaf.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    ca, leaf, key = _cert("rebind.test")
    folder = tmp_path_factory.mktemp("tls")
    (folder / "leaf.pem").write_bytes(leaf + key)
    seen: dict[str, list[str]] = {"sni": [], "host": []}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

        def do_GET(self) -> None:  # noqa: N802
            seen["host"].append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Length", "6")
            self.end_headers()
            self.wfile.write(b"secure")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(folder / "leaf.pem")
    ctx.sni_callback = lambda sock, name, _ctx: seen["sni"].append(name)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1], ca, seen
    httpd.shutdown()


def test_tls_goes_to_the_checked_address_with_the_name_as_sni_and_certificate_name(tls_server, monkeypatch) -> None:
    port, ca, seen = tls_server
    attempts = loopback_only(monkeypatch)
    dns = FakeDNS(["127.0.0.1"], ["10.9.9.9"])
    monkeypatch.setattr("socket.getaddrinfo", dns)
    f = _fetcher(f"127.0.0.1:{port}")
    f.tls.load_verify_locations(cadata=ca.decode())
    r = f.get(f"https://rebind.test:{port}/x")
    assert r.ok and r.body == b"secure"
    assert dns.asked == ["rebind.test"] and attempts == [("127.0.0.1", port)]
    assert seen["sni"][-1] == "rebind.test" and seen["host"][-1] == f"rebind.test:{port}"


def test_tls_certificate_must_name_the_url_host_not_the_address(tls_server, monkeypatch) -> None:
    port, ca, _ = tls_server
    loopback_only(monkeypatch)
    monkeypatch.setattr("socket.getaddrinfo", FakeDNS(["127.0.0.1"]))
    f = _fetcher(f"127.0.0.1:{port}")
    f.tls.load_verify_locations(cadata=ca.decode())
    assert f.get(f"https://other.test:{port}/x").error == "connection_error"  # certificate names rebind.test
    assert _fetcher(f"127.0.0.1:{port}").get(f"https://rebind.test:{port}/x").error == "connection_error"  # unknown CA
