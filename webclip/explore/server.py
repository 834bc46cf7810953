"""The explorer's HTTP server: one offline page and small JSON endpoints over a ``RunView`` (standard library)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from webclip import storage
from webclip.layout import stage_path

from .data import UID, RunView

DEFAULT_PORT = 8780
# The page may load nothing from elsewhere: everything it needs is inline or served here.
CSP = ("default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'")
MAX_BODY = 1_000_000  # bytes of a takedown selection


def _int(q: dict[str, list[str]], name: str, default: int | None, low: int = 0, high: int = 10**9) -> int | None:
    value = q.get(name, [""])[0]
    return default if value == "" else max(low, min(high, int(value)))


def _str(q: dict[str, list[str]], name: str) -> str:
    return q.get(name, [""])[0]


def api_funnel(view: RunView, q: dict[str, list[str]]) -> Any:
    return view.funnel()


def api_drops(view: RunView, q: dict[str, list[str]]) -> Any:
    return view.drop_examples(_str(q, "stage"), _str(q, "reason"))


def api_entries(view: RunView, q: dict[str, list[str]]) -> Any:
    return view.entries()


def api_samples(view: RunView, q: dict[str, list[str]]) -> Any:
    return view.find(_int(q, "entry", None), _str(q, "q"), _int(q, "offset", 0) or 0, _int(q, "limit", 60, 1, 500) or 60)


def api_duplicates(view: RunView, q: dict[str, list[str]]) -> Any:
    return view.duplicates()


def api_eval(view: RunView, q: dict[str, list[str]]) -> Any:
    return view.evaluation()


JSON_ROUTES: dict[str, Callable[[RunView, dict[str, list[str]]], Any]] = {
    "/api/funnel": api_funnel, "/api/drops": api_drops, "/api/entries": api_entries, "/api/samples": api_samples,
    "/api/duplicates": api_duplicates, "/api/eval": api_eval,
}


def page() -> bytes:
    """The single HTML page (styles and script inline)."""
    return files("webclip.explore").joinpath("static/index.html").read_bytes()


class Handler(BaseHTTPRequestHandler):
    """GET for the page, JSON, images and the confusion plot; POST only to build a takedown list."""

    server: ExploreServer
    server_version = "webclip-explore"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)

    def send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        """One complete response with the page's security headers."""
        self.send_response(status)
        for name, value in {"Content-Type": ctype, "Content-Length": str(len(body)), "Content-Security-Policy": CSP,
                            "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, obj: Any) -> None:
        self.send(status, json.dumps(obj, ensure_ascii=False, default=str).encode(), "application/json; charset=utf-8")

    def host_ok(self) -> bool:
        """Only requests addressed to this loopback server (a page elsewhere cannot rebind a name to it)."""
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        return host in self.server.hosts

    def do_GET(self) -> None:
        if not self.host_ok():
            return self.send_json(HTTPStatus.FORBIDDEN, {"error": "unexpected Host header"})
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        try:
            if url.path == "/favicon.ico":  # the page has none; answer before the browser logs a 404
                return self.send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            if url.path in ("/", "/index.html"):
                return self.send(HTTPStatus.OK, page(), "text/html; charset=utf-8")
            if url.path in JSON_ROUTES:
                return self.send_json(HTTPStatus.OK, JSON_ROUTES[url.path](self.server.view, query))
            if url.path.startswith("/image/") and url.path.endswith(".jpg"):
                return self.send_image(url.path[len("/image/"):-len(".jpg")])
            if url.path == "/files/confusion.png":
                return self.send_file(storage.join(stage_path(self.server.view.run, "eval"), "confusion.png"), "image/png")
        except (KeyError, ValueError) as e:
            return self.send_json(HTTPStatus.BAD_REQUEST, {"error": f"{type(e).__name__}: {e}"})
        self.send_json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {url.path}"})

    def send_image(self, uid: str) -> None:
        data = self.server.view.tars.image(uid) if UID.fullmatch(uid) else None
        if data is None:
            return self.send_json(HTTPStatus.NOT_FOUND, {"error": "no local image for this uid"})
        self.send(HTTPStatus.OK, data, "image/jpeg")

    def send_file(self, path: str, ctype: str) -> None:
        if not storage.exists(path):
            return self.send_json(HTTPStatus.NOT_FOUND, {"error": "not written by this run"})
        self.send(HTTPStatus.OK, storage.read_bytes(path), ctype)

    def do_POST(self) -> None:
        if not self.host_ok():
            return self.send_json(HTTPStatus.FORBIDDEN, {"error": "unexpected Host header"})
        if urlsplit(self.path).path != "/api/takedown":
            return self.send_json(HTTPStatus.NOT_FOUND, {"error": "only /api/takedown takes a POST"})
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            return self.send_json(HTTPStatus.BAD_REQUEST, {"error": "send JSON {\"uids\": [...]}"})
        try:
            uids = json.loads(self.rfile.read(length))["uids"]
            text = self.server.view.takedown([str(u) for u in uids])
        except (KeyError, TypeError, ValueError) as e:
            return self.send_json(HTTPStatus.BAD_REQUEST, {"error": f"{type(e).__name__}: {e}"})
        self.send(HTTPStatus.OK, text.encode(), "text/plain; charset=utf-8",
                  {"Content-Disposition": 'attachment; filename="takedown.txt"'})


class ExploreServer(ThreadingHTTPServer):
    """A threading HTTP server holding the run it shows."""

    daemon_threads = True

    def __init__(self, view: RunView, host: str, port: int, verbose: bool = False):
        super().__init__((host, port), Handler)
        self.view, self.verbose = view, verbose
        self.hosts = {host, "localhost", "127.0.0.1", "::1"}

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}/"


def start(run: str | Path, port: int = DEFAULT_PORT, host: str = "127.0.0.1", verbose: bool = False) -> ExploreServer:
    """Serve a run in a background thread (port 0: any free port); ``server.shutdown()`` stops it."""
    server = ExploreServer(RunView(run), host, port, verbose)
    threading.Thread(target=server.serve_forever, name="webclip-explore", daemon=True).start()
    return server
