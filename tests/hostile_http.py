"""A loopback HTTP server whose raw answers a test writes byte for byte, and a guard against other traffic."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass, field

DEFAULT = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


@dataclass
class Reply:
    """Raw bytes to send for one path: all at once, or ``trickle`` seconds apart ``step`` bytes at a time."""

    data: bytes
    trickle: float = 0.0
    step: int = 1
    hold: float = 0.0  # keep the connection open this long after sending, then close


@dataclass
class Seen:
    """One request as the server read it."""

    path: str
    headers: dict[str, str] = field(default_factory=dict)


class RawServer:
    """Accepts on ``host``:random port; answers each request with its path's ``Reply`` (else 200 "ok"), then closes."""

    def __init__(self, host: str = "127.0.0.1"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.create_server((host, 0), family=family, backlog=128)
        self.host = host
        self.port = self.listener.getsockname()[1]
        self.routes: dict[str, Reply] = {}
        self.seen: list[Seen] = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base(self) -> str:
        """``http://host:port``."""
        return f"http://[{self.host}]:{self.port}" if ":" in self.host else f"http://{self.host}:{self.port}"

    def hits(self, path: str) -> int:
        """How many requests for ``path`` arrived."""
        return sum(1 for s in self.seen if s.path == path)

    def close(self) -> None:
        """Stop accepting."""
        self.closed.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(5.0)
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    data = conn.recv(4096)
                    if not data:
                        return
                    head += data
                lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                path = parts[1] if len(parts) > 1 else ""
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                self.seen.append(Seen(path, headers))
                self._send(conn, self.routes.get(path, Reply(DEFAULT)))
            except OSError:  # the client hung up: what hostile tests provoke
                pass

    @staticmethod
    def _send(conn: socket.socket, reply: Reply) -> None:
        if reply.trickle:
            for i in range(0, len(reply.data), reply.step):
                conn.sendall(reply.data[i:i + reply.step])
                time.sleep(reply.trickle)
        else:
            conn.sendall(reply.data)
        if reply.hold:
            time.sleep(reply.hold)


def response(status: int | bytes, headers: list[tuple[str, str]] | None = None, body: bytes = b"",
             length: bool = True, close: bool = True) -> bytes:
    """A raw HTTP/1.1 answer: status (or a raw status line), headers, Content-Length unless told not to, and
    ``Connection: close`` (the server does close) unless told not to."""
    line = status if isinstance(status, bytes) else f"HTTP/1.1 {status} X".encode()
    head = [f"{k}: {v}" for k, v in headers or []]
    if length:
        head.append(f"Content-Length: {len(body)}")
    if close:
        head.append("Connection: close")
    return line + b"\r\n" + "".join(h + "\r\n" for h in head).encode("latin-1") + b"\r\n" + body


def loopback_only(monkeypatch) -> list[tuple]:  # noqa: ANN001
    """Let sockets connect to 127.0.0.0/8 and ::1 only (others refused, recorded); returns the attempts."""
    attempts: list[tuple] = []
    real = socket.socket.connect

    def connect(self: socket.socket, address: tuple) -> None:
        attempts.append(tuple(address))
        host = str(address[0]).split("%", 1)[0]
        if not ipaddress.ip_address(host).is_loopback:
            raise ConnectionRefusedError(f"test refuses traffic to {host}")
        real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


class FakeDNS:
    """Stands in for ``socket.getaddrinfo``: names get scripted answers in turn, IP literals pass through."""

    def __init__(self, *answers: list[str]):
        self.answers = list(answers)
        self.asked: list[str] = []
        self.real = socket.getaddrinfo

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: ANN001, A002
        try:
            ipaddress.ip_address(str(host).split("%", 1)[0])
            return self.real(host, port, family, type, proto, flags)
        except ValueError:
            pass
        self.asked.append(host)
        if not self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "no scripted answer")
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                 (a, port, 0, 0) if ":" in a else (a, port)) for a in answer]
