"""Paths that are local folders or object-store URLs (``gs://``, ``s3://``, any fsspec protocol).

Local paths keep the run folder's temp-file-and-rename writes; on object stores one upload is
already atomic (an object appears only once its upload completes), so a killed writer leaves
nothing half-written either way.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from webclip.runfolder import atomic_write_bytes, json_bytes


def is_remote(path: str | Path) -> bool:
    """Whether ``path`` is a URL with a protocol (``file://`` counts as remote: it goes through fsspec)."""
    return "://" in str(path)


def _fs(path: str) -> tuple[Any, str]:
    from fsspec.core import url_to_fs

    return url_to_fs(path)


def _urls(folder: str | Path, found: list[str]) -> list[str]:
    """fsspec answers without the protocol: put the folder's back, sorted."""
    protocol = str(folder).split("://", 1)[0]
    return sorted(f"{protocol}://{m}" for m in found)


def join(base: str | Path, *names: str) -> str:
    """``base/name/...`` for folders and URLs alike."""
    if is_remote(base):
        return posixpath.join(str(base).rstrip("/"), *names)
    return str(Path(base).joinpath(*names))


def exists(path: str | Path) -> bool:
    """Whether a file exists."""
    if not is_remote(path):
        return Path(path).exists()
    fs, p = _fs(str(path))
    return fs.exists(p)


@contextmanager
def open_read(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary file object for reading (streamed from object stores)."""
    if not is_remote(path):
        with open(path, "rb") as f:
            yield f
        return
    fs, p = _fs(str(path))
    with fs.open(p, "rb") as f:
        yield f


def read_bytes(path: str | Path) -> bytes:
    """The whole file."""
    with open_read(path) as f:
        return f.read()


def read_json(path: str | Path) -> Any:
    """A JSON file."""
    return json.loads(read_bytes(path))


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file atomically: rename into place locally, one upload remotely."""
    if not is_remote(path):
        atomic_write_bytes(path, data)
        return
    fs, p = _fs(str(path))
    fs.pipe_file(p, data)


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write the run folder's JSON."""
    write_bytes(path, json_bytes(obj))


def glob(folder: str | Path, pattern: str) -> list[str]:
    """Sorted paths of the files in ``folder`` matching ``pattern``."""
    if not is_remote(folder):
        return sorted(str(p) for p in Path(folder).glob(pattern))
    fs, p = _fs(str(folder))
    return _urls(folder, fs.glob(posixpath.join(p.rstrip("/"), pattern)))


def files_under(folder: str | Path) -> list[str]:
    """Every file below a folder or prefix, recursively, sorted (empty if it does not exist)."""
    if not is_remote(folder):
        return sorted(str(p) for p in Path(folder).rglob("*") if p.is_file())
    fs, p = _fs(str(folder))
    return _urls(folder, fs.find(p.rstrip("/")))


def remove_tree(path: str | Path) -> None:
    """Delete a folder or prefix and everything under it (no error if absent)."""
    if not is_remote(path):
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        return
    fs, p = _fs(str(path))
    if fs.exists(p):
        fs.rm(p, recursive=True)
