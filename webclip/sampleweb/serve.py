"""Serve a sample web's ``site/`` on 127.0.0.1 with a real threaded HTTP server."""

from __future__ import annotations

import json
import mimetypes
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

DEFAULT_PORT = 8765
mimetypes.add_type("image/webp", ".webp")


class SiteServer(ThreadingHTTPServer):
    """A threaded server over one site folder, with its routes, headers and a request log."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, root: Path, port: int, log_path: Path | None = None):
        self.root = Path(root).resolve()
        self.routes: dict[str, Any] = json.loads((self.root / "_routes.json").read_text())
        self.extra_headers: dict[str, dict[str, str]] = json.loads((self.root / "_headers.json").read_text())
        self.log_lock = threading.Lock()
        self.log_file = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115
        super().__init__(("127.0.0.1", port), SiteHandler)

    def log_request_line(self, path: str, status: int, arrived: float) -> None:
        """Append ``arrival-time path status`` to the request log (used to check crawl delays)."""
        if self.log_file:
            with self.log_lock:
                self.log_file.write(f"{arrived:.6f}\t{path}\t{status}\n")

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up early (timeouts, byte caps) are expected: stay quiet."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | TimeoutError):
            super().handle_error(request, client_address)

    def server_close(self) -> None:
        """Close the socket and the log."""
        super().server_close()
        if self.log_file:
            self.log_file.close()


class SiteHandler(BaseHTTPRequestHandler):
    """GET/HEAD for static files plus the routes of ``_routes.json``."""

    server: SiteServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Stay quiet on stderr; the server keeps its own log."""

    def _send(self, status: int, body: bytes, headers: dict[str, str], head_only: bool = False) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only:
            self.wfile.write(body)
        self.server.log_request_line(self.path, status, self.arrived)

    def do_HEAD(self) -> None:  # noqa: N802
        """Answer like GET without a body."""
        self.do_GET(head_only=True)

    def do_GET(self, head_only: bool = False) -> None:  # noqa: N802
        """Serve a file, an alias, a redirect or a slow response."""
        self.arrived = time.time()
        path = unquote(urlsplit(self.path).path)
        routes = self.server.routes
        for prefix, target in routes["redirect"].items():
            if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
                location = target + path[len(prefix):] if prefix.endswith("/") else target
                return self._send(302, b"", {"Location": location}, head_only)
        slow = routes["slow"]
        if path.startswith(slow["prefix"]):
            time.sleep(float(slow["seconds"]))
            path = "/" + path[len(slow["prefix"]):]
        for prefix, target in routes["alias"].items():
            if path.startswith(prefix):
                path = target + path[len(prefix):]
        if path.endswith("/"):
            path += "index.html"
        file = (self.server.root / path.lstrip("/")).resolve()
        if not file.is_relative_to(self.server.root) or not file.is_file() or file.name.startswith("_"):
            return self._send(404, b"<html><body>not found</body></html>", {"Content-Type": "text/html"}, head_only)
        ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        headers = {"Content-Type": ctype}
        headers.update(self.server.extra_headers.get(path, {}))
        self._send(200, file.read_bytes(), headers, head_only)


def start(out: str | Path, port: int = DEFAULT_PORT, log_path: str | Path | None = None) -> SiteServer:
    """Start serving ``<out>/site`` in a background thread; call ``stop`` when done."""
    server = SiteServer(Path(out) / "site", port, Path(log_path) if log_path else None)
    threading.Thread(target=server.serve_forever, name="sampleweb", daemon=True).start()
    return server


def stop(server: SiteServer) -> None:
    """Stop a server started with ``start``."""
    server.shutdown()
    server.server_close()


def base_url(port: int = DEFAULT_PORT) -> str:
    """The site's root URL."""
    return f"http://127.0.0.1:{port}/"
