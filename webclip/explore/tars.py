"""Images by uid from a run's local WebDataset tars, read at their byte offsets (no extraction)."""

from __future__ import annotations

import tarfile
import threading
from pathlib import Path


class TarIndex:
    """uid -> (tar, offset, size) of its ``.jpg`` member, built on first use from the tars' headers.

    Memory: one entry per image. Earlier folders win: final shards before download jobs.
    """

    def __init__(self, folders: list[Path]):
        self.folders = folders
        self._index: dict[str, tuple[Path, int, int]] | None = None
        self._lock = threading.Lock()

    def _build(self) -> dict[str, tuple[Path, int, int]]:
        index: dict[str, tuple[Path, int, int]] = {}
        for folder in self.folders:
            for path in sorted(folder.glob("*.tar")) if folder.is_dir() else []:
                with tarfile.open(path, mode="r:") as tar:
                    for m in tar:
                        key, _, ext = m.name.rpartition(".")
                        if m.isfile() and ext == "jpg":
                            index.setdefault(key, (path, m.offset_data, m.size))
        return index

    def index(self) -> dict[str, tuple[Path, int, int]]:
        """The whole index (built once, thread-safe)."""
        with self._lock:
            if self._index is None:
                self._index = self._build()
            return self._index

    def has(self, uid: str) -> bool:
        """Whether some local tar holds this uid's image."""
        return uid in self.index()

    def image(self, uid: str) -> bytes | None:
        """The JPEG bytes of ``uid``, or None."""
        hit = self.index().get(uid)
        if hit is None:
            return None
        path, offset, size = hit
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(size)
