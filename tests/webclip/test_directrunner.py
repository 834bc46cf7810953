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


def _manager(conn) -> object:
    handler = type("Handler", (), {"data_conn": conn})()
    return type("Manager", (), {"_worker_handler": handler})()


def _drain(conn, inputs: set[str], got: dict, order: list) -> None:
    """The gRPC side of Beam's runner channel: every message it would send, until each input's end marker."""
    done: set[str] = set()
    for elements in conn._write_outputs():
        for d in elements.data:
            order.append((d.transform_id, d.is_last))
            if d.is_last:
                done.add(d.transform_id)
            else:
                got.setdefault(d.transform_id, []).append(d.data)
        if done == inputs:
            return


def test_the_guarded_runner_sends_inputs_whole_in_order_while_the_worker_has_not_started(monkeypatch) -> None:
    """Beam's real runner channel with small queues that nobody drains until the runner has handed over every
    input: a send in the runner's thread would block here (the 4M hang); the guarded one returns at once."""
    monkeypatch.setattr(data_plane, "_DEFAULT_SEND_QUEUE_MAX_BYTES", 4 << 20)
    guard_direct_runner()
    guard_direct_runner()  # idempotent
    assert worker_handlers.DATA_BUFFER_TIME_LIMIT_MS == 0
    conn = data_plane._GrpcDataChannel(worker_handlers.DATA_BUFFER_TIME_LIMIT_MS)
    inputs = {"readA": _chunks(40), "readB": [bytes([97 + i % 20]) * (700 << 10) for i in range(30)]}
    handed = threading.Event()

    def runner() -> None:
        for transform, chunks in inputs.items():
            fn_runner.BundleManager._send_input_to_worker(_manager(conn), "bundle_1", transform, chunks)
        handed.set()

    threading.Thread(target=runner, daemon=True).start()
    assert handed.wait(10), "the runner blocked handing over input the worker cannot read yet"
    got: dict[str, list[bytes]] = {}
    order: list[tuple[str, bool]] = []
    drainer = threading.Thread(target=_drain, args=(conn, set(inputs), got, order), daemon=True)
    drainer.start()
    drainer.join(30)
    for transform, chunks in inputs.items():
        assert b"".join(got[transform]) == b"".join(chunks), transform
        assert order.index((transform, True)) == max(i for i, o in enumerate(order) if o[0] == transform)
    assert max(len(m) for ms in got.values() for m in ms) <= data_plane._DEFAULT_SIZE_FLUSH_THRESHOLD + CHUNK


def test_a_worker_in_the_runners_process_has_its_input_when_the_send_returns() -> None:
    guard_direct_runner()
    channel = data_plane.InMemoryDataChannel()
    chunks = [b"a" * 10, b"b" * 20]
    threads = threading.active_count()
    fn_runner.BundleManager._send_input_to_worker(_manager(channel), "bundle_2", "read", chunks)
    assert threading.active_count() == threads  # sent synchronously: the in-process worker reads a list once asked
    got = [e.data for e in channel.inverse().input_elements("bundle_2", ["read"]) if e.data]
    assert b"".join(got) == b"".join(chunks)


def test_direct_runner_options_use_the_local_runner_without_prism() -> None:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import StandardOptions
    from apache_beam.testing.util import assert_that, equal_to

    from webclip.beamio import pipeline_options

    for name in ("DirectRunner", "direct"):
        options = pipeline_options(name, 1, "in_memory", [])
        assert options.view_as(StandardOptions).runner == "webclip.directrunner.LocalRunner"
    with beam.Pipeline(options=options) as p:
        total = p | beam.Create(range(100)) | beam.CombineGlobally(sum)
        assert_that(total, equal_to([4950]))
    assert type(p.runner).__name__ == "LocalRunner"


def test_every_name_of_the_direct_runner_is_local_and_no_other() -> None:
    from webclip.beamio import is_local_runner

    assert all(is_local_runner(n) for n in ("DirectRunner", "direct", "directrunner", "DIRECT"))
    assert not any(is_local_runner(n) for n in ("DataflowRunner", "FlinkRunner", "PortableRunner", "webclip.directrunner.LocalRunner"))
