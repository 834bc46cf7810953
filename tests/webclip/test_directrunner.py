"""The DirectRunner guard: Beam's time-flushed data stream loses chunks; the guarded runner's sender does not."""

from __future__ import annotations

import threading
import time

from apache_beam.runners.portability.fn_api_runner import fn_runner, worker_handlers
from apache_beam.runners.worker import data_plane

from webclip.directrunner import guard_direct_runner

CHUNK = 1 << 20


class SendQueue:
    """The flush callback's side: records every message; blocks like a full send queue when told to."""

    def __init__(self, block_s: float, only_timer: bool):
        self.messages: list[bytes] = []
        self.block_s, self.only_timer = block_s, only_timer

    def __call__(self, data: bytes) -> None:
        if data:
            self.messages.append(data)
        if not self.only_timer or threading.current_thread() is not threading.main_thread():
            time.sleep(self.block_s)  # the hand-off waits for room, letting the writer run


def _chunks(n: int) -> list[bytes]:
    return [bytes([i % 251]) * CHUNK for i in range(n)]


def test_beams_time_flushed_stream_drops_chunks_written_while_a_flush_waits() -> None:
    """The upstream race the guard exists for (if this starts failing, Beam fixed it: see webclip.directrunner)."""
    sent = SendQueue(block_s=0.03, only_timer=True)
    stream = data_plane.TimeBasedBufferingClosableOutputStream(sent, flush_callback=sent, time_flush_threshold_ms=20)
    chunks = _chunks(150)
    for c in chunks:  # as Beam's runner sends a stage's input: write every chunk, then close
        stream.write(c)
        time.sleep(0.002)
    stream.close()
    assert sum(map(len, sent.messages)) < len(chunks) * CHUNK


class Conn:
    """A data channel whose streams are what Beam builds for the runner, with the runner's (guarded) time limit."""

    def __init__(self, sent: SendQueue):
        self.sent, self.closed = sent, threading.Event()

    def output_stream(self, instruction_id: str, transform_id: str):
        def close(data: bytes) -> None:
            self.sent(data)
            self.closed.set()

        return data_plane.ClosableOutputStream.create(close, self.sent, worker_handlers.DATA_BUFFER_TIME_LIMIT_MS)


def _manager(conn) -> object:
    handler = type("Handler", (), {"data_conn": conn})()
    return type("Manager", (), {"_worker_handler": handler})()


def test_the_guarded_runner_sends_every_chunk_in_order_in_bounded_messages_without_blocking() -> None:
    guard_direct_runner()
    guard_direct_runner()  # idempotent
    assert worker_handlers.DATA_BUFFER_TIME_LIMIT_MS == 0
    sent = SendQueue(block_s=0.005, only_timer=False)  # every hand-off waits, as on a full send queue
    conn, chunks = Conn(sent), _chunks(40)
    started = time.monotonic()
    fn_runner.BundleManager._send_input_to_worker(_manager(conn), "bundle_1", "read", chunks)
    assert time.monotonic() - started < 0.1  # the runner goes on to start the bundle while the input is sent
    assert conn.closed.wait(30)
    assert b"".join(sent.messages) == b"".join(chunks)
    assert max(map(len, sent.messages)) <= data_plane._DEFAULT_SIZE_FLUSH_THRESHOLD + CHUNK


def test_a_worker_in_the_runners_process_gets_its_input_before_the_bundle_starts() -> None:
    guard_direct_runner()
    channel = data_plane.InMemoryDataChannel()
    chunks = [b"a" * 10, b"b" * 20]
    fn_runner.BundleManager._send_input_to_worker(_manager(channel), "bundle_2", "read", chunks)
    got = [e.data for e in channel.inverse().input_elements("bundle_2", ["read"]) if e.data]
    assert b"".join(got) == b"".join(chunks)
