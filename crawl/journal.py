"""An append-only journal of finished pages: the crawler's checkpoint, replayable after SIGKILL."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from webclip.fetch import is_transient


def read_journal(path: Path) -> Iterator[dict[str, Any]]:
    """Complete entries in order; a torn last line (killed mid-write) is cut off the file."""
    if not path.exists():
        return
    good = 0
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                break
            good += len(line)
            yield entry
    if good != path.stat().st_size:
        with open(path, "r+b") as f:
            f.truncate(good)


def journal_slice(path: Path, start: int = 0, stop: int | None = None) -> Iterator[dict[str, Any]]:
    """The complete entries between byte offsets ``start`` and ``stop`` (line boundaries), read-only."""
    if not path.exists():
        return
    with open(path, "rb") as f:
        f.seek(start)
        at = start
        for line in f:
            if (stop is not None and at >= stop) or not line.endswith(b"\n"):
                return
            at += len(line)
            yield json.loads(line)


def kept_on_replay(entry: dict[str, Any]) -> bool:
    """Whether a resumed crawl keeps this entry: a transient drop is not kept, so its page is tried again."""
    return entry["outcome"] == "sitemaps" or not is_transient(entry["outcome"])


class Entries:
    """A crawl's entries in order, read back from its journal on each pass (never all held in memory).

    Those a resume kept from the journal (``kept_on_replay``), then every entry this run appended.
    """

    def __init__(self, path: Path, resumed_at: int, count: int):
        self.path, self.resumed_at, self.count = path, resumed_at, count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from filter(kept_on_replay, journal_slice(self.path, 0, self.resumed_at))
        yield from journal_slice(self.path, self.resumed_at)

    def candidates(self) -> Iterator[dict[str, Any]]:
        """Every candidate row of every entry, in journal order."""
        for entry in self:
            yield from entry["candidates"]

    def __repr__(self) -> str:
        return f"Entries({self.path}, {self.count} entries)"


class Journal:
    """Appends one JSON line per finished page, flushed and fsynced before the page counts as done."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(path, "ab")  # noqa: SIM115

    def append(self, entry: dict[str, Any]) -> None:
        """Write one entry durably (one write call per line)."""
        self.f.write((json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode())
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        """Close the file."""
        self.f.close()
