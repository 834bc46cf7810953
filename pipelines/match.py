"""Query matching with an Aho-Corasick automaton: word-boundary (default) or MetaCLIP substring."""

from __future__ import annotations

import json
import threading
from typing import Any

import ahocorasick

from webclip.pipelines.normalise import match_key

_lock = threading.Lock()
_cache: dict[tuple[str, str], Any] = {}


def entry_key(entry: str, mode: str) -> str:
    """How an entry is stored in the automaton: space-padded match key, or lower-case substring."""
    return match_key(entry) if mode == "word" else entry.lower()


def text_key(text: str, mode: str) -> str:
    """How a caption is scanned, consistent with ``entry_key``."""
    return match_key(text) if mode == "word" else text.lower()


def build_automaton(entries: list[str], mode: str = "word") -> ahocorasick.Automaton:
    """An automaton whose values are the sorted ids of the entries sharing a key."""
    auto = ahocorasick.Automaton()
    for i, entry in enumerate(entries):
        key = entry_key(entry, mode)
        if not key.strip():
            continue
        ids = auto.get(key, ())
        auto.add_word(key, (*ids, i))
    auto.make_automaton()
    return auto


def match_ids(auto: ahocorasick.Automaton, text: str, mode: str = "word") -> list[int]:
    """Sorted ids of every entry found in ``text``."""
    if len(auto) == 0:
        return []
    found: set[int] = set()
    for _, ids in auto.iter(text_key(text, mode)):
        found.update(ids)
    return sorted(found)


def load_queries(path: str) -> list[str]:
    """A query list: a JSON list of strings (MetaCLIP's metadata.json format)."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as f:
        entries = json.loads(f.read().decode("utf-8"))
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ValueError(f"{path}: a query list must be a JSON list of strings")
    return entries


def shared_automaton(path: str, mode: str) -> ahocorasick.Automaton:
    """One automaton per (query file, mode) per worker process, built on first use."""
    key = (path, mode)
    with _lock:
        if key not in _cache:
            _cache[key] = build_automaton(load_queries(path), mode)
        return _cache[key]
