"""Progress bars for work that runs elsewhere (Beam workers): a thread polls a count and draws it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def watch(desc: str, total: int | None, poll: Callable[[], int] | None, enabled: bool = True,
          interval: float = 0.5, unit: str = "it") -> Iterator[None]:
    """Show a bar whose count is ``poll()`` (or only elapsed time when ``poll`` is None) while the body runs."""
    if not enabled:
        yield
        return
    bar = tqdm(total=total, desc=desc, unit=unit, mininterval=interval)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            if poll is not None:
                try:
                    bar.n = poll()
                except OSError:
                    continue
            bar.refresh()

    thread = threading.Thread(target=loop, name=f"progress-{desc}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        if poll is not None:
            bar.n = poll()
        bar.close()
