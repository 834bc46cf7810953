"""Config as data: one JSON file with a section per stage, each mapping onto a dataclass."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or flag that does not fit the stage's dataclass."""


def load_file(path: str | Path | None) -> dict[str, Any]:
    """Read a config JSON file (``{"crawl": {...}, "curate": {...}}``); ``None`` gives ``{}``."""
    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {p} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a JSON object with one section per stage")
    return data


def _base_type(tp: Any) -> tuple[Any, bool]:
    """The non-None type inside ``X | None`` and whether None is allowed."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tp), True
    return tp, False


def _coerce(name: str, tp: Any, value: Any) -> Any:
    """Check and convert one JSON value to the field's type."""
    base, optional = _base_type(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{name}: null is not allowed")
    origin = typing.get_origin(base)
    if origin in (list, tuple):
        (inner,) = typing.get_args(base)[:1]
        if not isinstance(value, list):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        items = [_coerce(name, inner, v) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected an object, got {value!r}")
        return dict(value)
    if base is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true/false, got {value!r}")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        return value
    if base is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        return float(value)
    if base is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        return value
    return value


def build(cls: type[T], section: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None) -> T:
    """Instantiate a config dataclass from a file section plus flag overrides (flags win)."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    merged: dict[str, Any] = {}
    for source in (section or {}), (overrides or {}):
        for key, value in source.items():
            if key not in known:
                raise ConfigError(f"unknown {cls.__name__} field {key!r} (known: {', '.join(sorted(known))})")
            merged[key] = _coerce(key, hints[key], value)
    try:
        obj = cls(**merged)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{cls.__name__}: {e}") from e
    validate = getattr(obj, "validate", None)
    if validate is not None:
        try:
            validate()
        except ValueError as e:
            raise ConfigError(f"{cls.__name__}: {e}") from e
    return obj


def runtime_fields(cls: type) -> frozenset[str]:
    """The fields of a stage config that change how a run goes, never what it writes (``RUNTIME`` on each class)."""
    return frozenset(name for klass in cls.__mro__ for name in vars(klass).get("RUNTIME", ()))


def to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as JSON-ready data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


_FIELD_LINE = re.compile(r"^\s+(\w+)\s*:[^#]*#\s*(.+?)\s*$")
_COMMENT_LINE = re.compile(r"^\s+#\s*(.+?)\s*$")
_BARE_FIELD = re.compile(r"^\s+(\w+)\s*:")


def field_docs(cls: type) -> dict[str, str]:
    """Each field's help: its trailing ``# comment`` in the class source, else the comment lines just above it.

    The comment beside a field is the one source of truth for what it means; ``--help`` shows it.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        above: list[str] = []
        for line in lines:
            if m := _FIELD_LINE.match(line):
                docs[m.group(1)] = m.group(2)
                above = []
            elif m := _COMMENT_LINE.match(line):
                above.append(m.group(1))
            elif (m := _BARE_FIELD.match(line)) and above:
                docs[m.group(1)] = " ".join(above)
                above = []
            else:
                above = []
    return docs


def _default_text(f: dataclasses.Field) -> str:
    """A field's default as the user would write it in a config file."""
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value or '""'


def flag_help(cls: type, f: dataclasses.Field, docs: dict[str, str]) -> str:
    """``--help`` text: what the field does (with its unit), its default, and whether resume may change it."""
    text = docs.get(f.name) or f.metadata.get("help", "")
    text = f"{text} (default: {_default_text(f)})".strip().replace("%", "%%")
    if f.name in runtime_fields(cls):
        text += " [run-time knob: may change on resume]"
    return text


def add_flags(parser: argparse.ArgumentParser, cls: type, prefix: str = "") -> None:
    """Add one kebab-case flag per dataclass field; unset flags stay ``None``."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    group = parser.add_argument_group(f"{cls.__name__} fields (override the config file)")
    for f in dataclasses.fields(cls):
        flag = "--" + prefix + f.name.replace("_", "-")
        base, _ = _base_type(hints[f.name])
        doc = flag_help(cls, f, docs)
        origin = typing.get_origin(base)
        if base is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=doc)
        elif origin in (list, tuple):
            (inner,) = typing.get_args(base)[:1]
            group.add_argument(flag, dest=f.name, action="append", type=inner, default=None, help=doc + " (repeatable)")
        elif origin is dict:
            group.add_argument(flag, dest=f.name, type=json.loads, default=None, help=doc + " (JSON)")
        else:
            group.add_argument(flag, dest=f.name, type=base if base in (int, float, str) else str, default=None, help=doc)


def flag_overrides(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The dataclass fields the user set on the command line."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name, None) is not None}


def items_with_file(items: list[str], path: str | None, what: str) -> list[str]:
    """A list field plus one item per line of an optional file (blank lines and ``#`` comments skipped)."""
    out = list(items)
    if path:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{what} file not found: {p}")
        out += [line.strip() for line in p.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return out


@dataclasses.dataclass
class BeamRunner:
    """The runner fields every Beam stage shares (DirectRunner with worker processes by default)."""

    # Run-time knobs: where and how wide a pipeline runs never changes its output, so a resume may change them.
    RUNTIME: ClassVar[tuple[str, ...]] = ("runner", "direct_num_workers", "direct_running_mode", "pipeline_args")

    runner: str = "DirectRunner"  # Beam runner: DirectRunner, DataflowRunner, FlinkRunner, SparkRunner, ...
    direct_num_workers: int = 2  # DirectRunner only: worker processes or threads
    direct_running_mode: str = "multi_processing"  # DirectRunner only: in_memory, multi_threading or multi_processing
    pipeline_args: list[str] = dataclasses.field(default_factory=list)  # extra Beam pipeline options, e.g. --project=P

    def worker_extras(self) -> tuple[str, ...]:
        """The package extras this stage's remote Beam workers need beyond the core dependencies."""
        return ()

    def beam_options(self) -> Any:
        """PipelineOptions for these fields (imports Beam only when a pipeline runs)."""
        from webclip.beamio import pipeline_options

        return pipeline_options(self.runner, self.direct_num_workers, self.direct_running_mode, self.pipeline_args,
                                self.worker_extras())
