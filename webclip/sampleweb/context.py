"""Make sure a run's sample web exists and serve it while a stage runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from webclip.sampleweb.generate import SampleWebConfig, generate
from webclip.sampleweb.serve import DEFAULT_PORT, start, stop


@dataclass
class SampleWebSection:
    """The ``sample_web`` config section: how to generate it and whether stages serve it."""

    serve: bool = False
    port: int = DEFAULT_PORT
    generate: dict = field(default_factory=dict)

    def generator_config(self) -> SampleWebConfig:
        """The generator's dataclass."""
        from webclip.config import build

        return build(SampleWebConfig, self.generate)


def sample_web_dir(run: str | Path) -> Path:
    """Where a run keeps its sample web."""
    return Path(run) / "sampleweb"


def ensure_sample_web(run: str | Path, cfg: SampleWebConfig) -> Path:
    """Generate ``<run>/sampleweb`` unless it already holds this exact config."""
    out = sample_web_dir(run)
    meta = out / "sampleweb.json"
    if meta.exists() and json.loads(meta.read_text())["config"] == asdict(cfg):
        return out
    generate(cfg, out)
    return out


@contextmanager
def served(run: str | Path, section: SampleWebSection, log_path: Path | None = None) -> Iterator[str | None]:
    """Serve the run's sample web for the duration of a stage when the config asks for it."""
    if not section.serve:
        yield None
        return
    out = ensure_sample_web(run, section.generator_config())
    server = start(out, section.port, log_path)
    try:
        yield f"http://127.0.0.1:{section.port}/"
    finally:
        stop(server)
