"""Query matching with an Aho-Corasick automaton: word-boundary (default) or MetaCLIP substring."""

from __future__ import annotations

import json
import threading
from typing import Any

from webclip.pipelines.normalise import match_key

_lock = threading.Lock()
_cache: dict[tuple[str, str, str], Any] = {}


def entry_key(entry: str, mode: str) -> str:
    """How an entry is stored in the automaton: space-padded match key, or lower-case substring."""
    return match_key(entry) if mode == "word" else entry.lower()


def text_key(text: str, mode: str) -> str:
    """How a caption is scanned, consistent with ``entry_key``."""
    return match_key(text) if mode == "word" else text.lower()


class Automaton:
    """An Aho-Corasick automaton over entry keys; the value of a key is the sorted ids sharing it.

    Two measured backends (bench/match.py): ``ahocorasick_rs`` (default: faster matching, a quarter of
    the memory for 500k entries) and ``pyahocorasick``; both give the same ids.
    """

    def __init__(self, entries: list[str], mode: str = "word", backend: str = "ahocorasick_rs"):
        self.mode = mode
        by_key: dict[str, list[int]] = {}
        for i, entry in enumerate(entries):
            key = entry_key(entry, mode)
            if key.strip():
                by_key.setdefault(key, []).append(i)
        self.keys = list(by_key)
        self.ids = [tuple(by_key[k]) for k in self.keys]
        self.backend = backend
        if not self.keys:
            self.auto = None
        elif backend == "ahocorasick_rs":
            import ahocorasick_rs

            self.auto = ahocorasick_rs.AhoCorasick(self.keys, matchkind=ahocorasick_rs.MatchKind.Standard)
        elif backend == "pyahocorasick":
            import ahocorasick

            self.auto = ahocorasick.Automaton()
            for k, key in enumerate(self.keys):
                self.auto.add_word(key, k)
            self.auto.make_automaton()
        else:
            raise ValueError(f"unknown matcher backend {backend!r}")

    def __len__(self) -> int:
        return len(self.keys)

    def hits(self, key: str) -> list[int]:
        """Indexes of the keys found in an already keyed text (overlapping)."""
        if self.auto is None:
            return []
        if self.backend == "ahocorasick_rs":
            return [k for k, _, _ in self.auto.find_matches_as_indexes(key, overlapping=True)]
        return [k for _, k in self.auto.iter(key)]


def build_automaton(entries: list[str], mode: str = "word", backend: str = "ahocorasick_rs") -> Automaton:
    """The automaton for a query list."""
    return Automaton(entries, mode, backend)


def match_ids(auto: Automaton, text: str, mode: str = "word") -> list[int]:
    """Sorted ids of every entry found in ``text``."""
    found: set[int] = set()
    for k in auto.hits(text_key(text, mode)):
        found.update(auto.ids[k])
    return sorted(found)


def load_queries(path: str) -> list[str]:
    """A query list: a JSON list of strings (MetaCLIP's metadata.json format)."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as f:
        entries = json.loads(f.read().decode("utf-8"))
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ValueError(f"{path}: a query list must be a JSON list of strings")
    return entries


def shared_automaton(path: str, mode: str, backend: str = "ahocorasick_rs") -> Automaton:
    """One automaton per (query file, mode, backend) per worker process, built on first use."""
    key = (path, mode, backend)
    with _lock:
        if key not in _cache:
            _cache[key] = build_automaton(load_queries(path), mode, backend)
        return _cache[key]
