"""An append-only journal of finished pages: the crawler's checkpoint, replayable after SIGKILL."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


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
