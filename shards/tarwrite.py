"""Deterministic WebDataset tars: members in key order, mtime 0, fixed owners."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from webclip import storage


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info, io.BytesIO(data)


def tar_bytes(samples: Iterable[dict[str, Any]]) -> bytes:
    """A tar of samples, each ``{"key", "jpg": bytes, "txt": str, "json": dict}``, in the order given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for s in samples:
            key = s["key"]
            tar.addfile(*_member(f"{key}.jpg", s["jpg"]))
            tar.addfile(*_member(f"{key}.json", json.dumps(s["json"], sort_keys=True, ensure_ascii=False).encode()))
            tar.addfile(*_member(f"{key}.txt", s["txt"].encode()))
    return buf.getvalue()


def write_tar(path: str | Path, samples: Iterable[dict[str, Any]]) -> None:
    """Write a tar atomically: a killed writer never leaves a partial tar visible."""
    storage.write_bytes(path, tar_bytes(samples))


def read_tar(path: str | Path) -> Iterator[dict[str, Any]]:
    """Samples of a tar written by ``write_tar``, in order, streamed (local or remote)."""
    current: dict[str, Any] = {}
    with storage.open_read(path) as raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
        for m in tar:
            f = tar.extractfile(m)
            if f is None:
                continue
            key, ext = m.name.rsplit(".", 1)
            if current and current["key"] != key:
                yield current
                current = {}
            current["key"] = key
            data = f.read()
            current[ext] = json.loads(data) if ext == "json" else data.decode() if ext == "txt" else data
    if current:
        yield current
