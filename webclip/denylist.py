"""The run-wide denylist: image URLs, page URLs, registered domains and image sha256 that no stage uses again.

Entries are JSON lines ``{"kind", "value", "source"}`` in ``<run>/denylist/*.jsonl``, one file per writer
(``takedown-<id>.jsonl``, ``optout-shards.jsonl``, ``optout-curate.jsonl``), each rewritten whole and atomically,
so writers never race on one file. ``<run>/denylist/shared.json`` may name shared JSONL files kept across runs
(the ``denylist`` knob): their entries count as the run's, and a takedown adds its entries to them too.

Values are normalised with the dedupe keys: URLs by ``dedupe.urls.image_url_key`` (scheme and host case,
default ports, tracking parameters, query order), domains lower-cased without dots at the ends, sha256 as
lower-case hex. A domain entry covers its subdomains (``example.com`` denies ``cdn.example.com``).
Every stage that meets a denied item drops it as ``optout/denylisted`` and never fetches it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from webclip import storage
from webclip.dedupe.urls import image_url_key

REASON = "optout/denylisted"
FOLDER = "denylist"
SHARED = "shared.json"
KINDS = ("url", "image_url", "page_url", "domain", "sha256")  # "url": an image or a page URL
SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True, order=True)
class Entry:
    """One denied item: its kind, its normalised value and who wrote it (``takedown``, ``opt_out/...``)."""

    kind: str
    value: str
    source: str = "takedown"


@dataclass(frozen=True)
class Denylist:
    """The normalised keys that deny a pair; empty when nothing is denied."""

    image_urls: frozenset[str] = frozenset()
    page_urls: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    sha256: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.image_urls or self.page_urls or self.domains or self.sha256)

    def __len__(self) -> int:
        return len(self.image_urls | self.page_urls) + len(self.domains) + len(self.sha256)


# ---------------------------------------------------------------- normalising and matching (pure)

def normalise_domain(value: str) -> str:
    """A domain or host as matched: lower case, no dots at the ends; a URL gives its host."""
    value = value.strip()
    if "://" in value:
        value = urlsplit(value).hostname or ""
    return value.lower().strip(".")


NORMALISERS: dict[str, Callable[[str], str]] = {
    "url": image_url_key, "image_url": image_url_key, "page_url": image_url_key,
    "domain": normalise_domain, "sha256": lambda v: v.strip().lower(),
}


def normalise(entry: Entry) -> Entry | None:
    """The entry with its value normalised, or None when the value cannot be one of its kind."""
    if entry.kind not in NORMALISERS:
        return None
    value = NORMALISERS[entry.kind](entry.value)
    if not value or (entry.kind == "sha256" and not SHA256.match(value)):
        return None
    return Entry(entry.kind, value, entry.source)


def parse_line(line: str, source: str = "takedown") -> Entry | None:
    """A request line: ``[KIND] VALUE`` (KIND one of ``KINDS``; else a URL, a sha256 or a domain); ``#`` comments."""
    text = line.split("#", 1)[0].strip()
    if not text:
        return None
    head, _, rest = text.partition(" ")
    if head in KINDS and rest.strip():
        return normalise(Entry(head, rest.strip(), source))
    kind = "url" if "://" in text else "sha256" if SHA256.match(text) else "domain"
    return normalise(Entry(kind, text, source))


def parse_lines(lines: Iterable[str], source: str = "takedown") -> list[Entry]:
    """Every entry a request names, normalised, sorted and without repeats (unreadable lines left out)."""
    return sorted({e for line in lines if (e := parse_line(line, source)) is not None})


def build(entries: Iterable[Entry]) -> Denylist:
    """The lookup sets of some entries."""
    sets: dict[str, set[str]] = {k: set() for k in KINDS}
    for e in entries:
        sets[e.kind].add(e.value)
    return Denylist(frozenset(sets["url"] | sets["image_url"]), frozenset(sets["url"] | sets["page_url"]),
                    frozenset(sets["domain"]), frozenset(sets["sha256"]))


def host_denied(url: str | None, domains: frozenset[str]) -> bool:
    """Whether ``url``'s host or any domain above it is denied."""
    if not url or not domains:
        return False
    try:
        host = (urlsplit(url.strip()).hostname or "").lower().rstrip(".")
    except ValueError:
        return False
    if host in domains:
        return True
    if ":" in host or host.replace(".", "").isdigit():  # an IP address: only itself, never a suffix
        return False
    labels = host.split(".")
    return any(".".join(labels[i:]) in domains for i in range(1, len(labels)))


def match(denylist: Denylist, image_url: str | None = None, page_url: str | None = None,
          sha256: str | None = None) -> str | None:
    """Which rule denies a pair (``image_url``, ``page_url``, ``domain`` or ``sha256``), or None."""
    if not denylist:
        return None
    if image_url and image_url_key(image_url) in denylist.image_urls:
        return "image_url"
    if page_url and image_url_key(page_url) in denylist.page_urls:
        return "page_url"
    if host_denied(image_url, denylist.domains) or host_denied(page_url, denylist.domains):
        return "domain"
    if sha256 and sha256.lower() in denylist.sha256:
        return "sha256"
    return None


def row_denied(denylist: Denylist, row: dict[str, Any]) -> str | None:
    """``match`` on a record (candidate, curated or pool row, or a sample's ``.json``)."""
    return match(denylist, row.get("image_url") or row.get("url"), row.get("page_url"), row.get("sha256"))


def url_admitted(denylist: Denylist, url: str) -> bool:
    """Whether the crawler may fetch ``url`` as a page or an image (its URL and domain are not denied)."""
    if not denylist:
        return True
    key = image_url_key(url)
    return key not in denylist.image_urls and key not in denylist.page_urls and not host_denied(url, denylist.domains)


def drop_denied(rows: Iterable[dict[str, Any]], denylist: Denylist,
                on_drop: Callable[[dict[str, Any]], None] | None = None) -> Iterator[dict[str, Any]]:
    """The rows no rule denies, streamed; ``on_drop`` hears each denied one (to count it)."""
    for row in rows:
        if denylist and row_denied(denylist, row):
            if on_drop is not None:
                on_drop(row)
            continue
        yield row


def sample_denied(denylist: Denylist, sample: dict[str, Any]) -> bool:
    """Whether a WebDataset sample (``{"json": bytes | dict, ...}``) is denied: for training-data readers."""
    meta = sample.get("json")
    if isinstance(meta, bytes | str):
        meta = json.loads(meta)
    return bool(denylist) and isinstance(meta, dict) and row_denied(denylist, meta) is not None


# ---------------------------------------------------------------- files (thin IO)

def entries_bytes(entries: Iterable[Entry]) -> bytes:
    """JSONL of the entries, sorted, without repeats: the same entries give the same bytes."""
    return "".join(json.dumps({"kind": e.kind, "value": e.value, "source": e.source}, sort_keys=True,
                              ensure_ascii=False) + "\n" for e in sorted(set(entries))).encode()


def read_entries(path: str | Path) -> list[Entry]:
    """The entries of one JSONL file (none if it does not exist); lines that are not entries are refused."""
    if not storage.exists(path):
        return []
    out = []
    for n, line in enumerate(storage.read_bytes(path).decode().splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            entry = normalise(Entry(obj["kind"], obj["value"], obj.get("source", "takedown")))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"denylist {path} line {n} is not an entry: {line[:80]!r}") from e
        if entry is None:
            raise ValueError(f"denylist {path} line {n}: {obj.get('value')!r} is not a {obj.get('kind')}")
        out.append(entry)
    return out


def add_entries(path: str | Path, entries: Iterable[Entry]) -> int:
    """Merge entries into one JSONL file, rewritten atomically (local or remote); returns how many were new."""
    old = set(read_entries(path))
    new = set(entries) - old
    if new or not storage.exists(path):
        storage.write_bytes(path, entries_bytes(old | new))
    return len(new)


def folder(run: str | Path) -> Path:
    """The run's denylist folder."""
    return Path(run) / FOLDER


def shared_files(run: str | Path) -> list[str]:
    """The shared denylist files the run was pointed at (``shared.json``)."""
    p = folder(run) / SHARED
    return list(json.loads(p.read_text())["shared"]) if p.exists() else []


def set_shared(run: str | Path, paths: str | list[str] | None) -> None:
    """Record the ``denylist`` knob: shared files (local paths made absolute, or URLs) read with the run's."""
    if not paths:
        return
    paths = [paths] if isinstance(paths, str) else list(paths)
    full = sorted(set(shared_files(run)) | {p if storage.is_remote(p) else str(Path(p).resolve()) for p in paths})
    if full != shared_files(run):
        storage.write_json(folder(run) / SHARED, {"shared": full})


def run_files(run: str | Path) -> list[str]:
    """Every file whose entries the run honours: its own ``*.jsonl`` and the shared ones."""
    own = sorted(str(p) for p in folder(run).glob("*.jsonl")) if folder(run).is_dir() else []
    return own + shared_files(run)


def load(paths: Iterable[str | Path]) -> Denylist:
    """The denylist of some files."""
    return build(e for p in paths for e in read_entries(p))


def for_run(run: str | Path) -> Denylist:
    """The denylist every stage of ``run`` honours (its own entries and the shared files')."""
    return load(run_files(run))


def record(run: str | Path, name: str, entries: Iterable[Entry], shared: bool = False) -> int:
    """Add entries to the run's ``<name>.jsonl`` (and to every shared file when ``shared``); returns the new ones."""
    entries = list(entries)
    new = add_entries(folder(run) / f"{name}.jsonl", entries) if entries else 0
    if shared:
        for path in shared_files(run):
            add_entries(path, entries)
    return new
