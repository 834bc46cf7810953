"""Accounting: every unit entering a stage leaves it kept or dropped with a named reason."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from webclip.hashing import sha256_hex

EXAMPLES_PER_REASON = 5  # drop examples kept per reason (``drop_examples.json``)


class AccountingError(RuntimeError):
    """``in != kept + sum(dropped)``: a stage lost or invented records."""


def example_rank(example: dict[str, Any]) -> str:
    """An example's stable rank: sha256 of its canonical JSON (the same in every process and worker)."""
    return sha256_hex(json.dumps(example, sort_keys=True, default=str, ensure_ascii=False))


@dataclass
class DropExamples:
    """Per drop reason, the ``k`` examples with the smallest ``example_rank``: a deterministic sample
    whatever the order or partitioning of the drops. Memory: ``k`` examples per reason."""

    k: int = EXAMPLES_PER_REASON
    by_reason: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # reason -> rank -> example

    def add(self, reason: str, example: dict[str, Any], rank: str | None = None) -> None:
        """Offer one dropped item; it stays if it is among the ``k`` smallest ranks of its reason."""
        kept = self.by_reason.setdefault(reason, {})
        kept[rank or example_rank(example)] = example
        if len(kept) > self.k:
            del kept[max(kept)]

    def merge(self, other: DropExamples) -> DropExamples:
        """Fold ``other`` in (associative and commutative: a Beam combiner's merge)."""
        for reason, kept in other.by_reason.items():
            for rank, example in kept.items():
                self.add(reason, example, rank)
        return self

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        """``{reason: [examples by rank]}``, the JSON form of ``drop_examples.json``."""
        return {reason: [kept[r] for r in sorted(kept)] for reason, kept in sorted(self.by_reason.items())}

    @classmethod
    def from_dict(cls, examples: dict[str, list[dict[str, Any]]], k: int = EXAMPLES_PER_REASON,
                  skip: Collection[str] = ()) -> DropExamples:
        """Examples read back from ``as_dict``, leaving out those whose ``uid`` is in ``skip``."""
        out = cls(k)
        for reason, items in examples.items():
            for example in items:
                if example.get("uid") not in skip:
                    out.add(reason, example)
        return out


def drop_examples_record(examples: DropExamples, unit: str) -> dict[str, Any]:
    """The ``drop_examples.json`` document: the rule, the unit and the examples per reason."""
    return {"unit": unit, "k": examples.k, "rule": "per reason, the k smallest sha256 of the example's canonical JSON",
            "examples": examples.as_dict()}


def duplicate_group_sample(groups: dict[str, tuple[str, str]], k: int = 20, members: int = 8) -> dict[str, Any]:
    """The ``k`` duplicate groups whose kept uid has the smallest sha256, each with up to ``members`` dropped
    members (smallest uids first); ``groups`` maps each dropped uid to (kept uid, reason)."""
    by_kept: dict[str, list[dict[str, str]]] = {}
    for uid, (kept, reason) in groups.items():
        by_kept.setdefault(kept, []).append({"uid": uid, "reason": reason})
    chosen = sorted(by_kept, key=sha256_hex)[:k]
    return {"k": k, "rule": "the k groups whose kept uid has the smallest sha256", "total_groups": len(by_kept),
            "groups": [{"kept": kept, "size": 1 + len(by_kept[kept]),
                        "members": sorted(by_kept[kept], key=lambda m: m["uid"])[:members]} for kept in chosen]}


@dataclass
class Tally:
    """Counts for one unit of one stage: ``in``, ``kept`` and ``dropped[<step>/<reason>]``."""

    unit: str
    n_in: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: DropExamples = field(default_factory=DropExamples)

    def drop(self, reason: str, n: int = 1, example: dict[str, Any] | None = None) -> None:
        """Count ``n`` units dropped for ``reason`` (``<step>/<reason>``), offering one as an example."""
        if "/" not in reason:
            raise ValueError(f"drop reason must be '<step>/<reason>', got {reason!r}")
        if n:
            self.dropped[reason] += n
        if example is not None:
            self.examples.add(reason, example)

    def examples_record(self) -> dict[str, Any]:
        """This tally's ``drop_examples.json`` document."""
        return drop_examples_record(self.examples, self.unit)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form used in ``stats.json``."""
        return {"unit": self.unit, "in": self.n_in, "kept": self.kept, "dropped": dict(sorted(self.dropped.items()))}

    def check(self) -> None:
        """Raise if the identity ``in == kept + Σdropped`` does not hold."""
        check_identity(self.as_dict())


def check_identity(block: dict[str, Any]) -> None:
    """Raise AccountingError unless ``block['in'] == block['kept'] + sum(block['dropped'])``."""
    total = block["kept"] + sum(block["dropped"].values())
    if block["in"] != total:
        raise AccountingError(
            f"{block.get('unit', 'records')}: in={block['in']} but kept+dropped={total} ({block['dropped']})"
        )


def top_reasons(block: dict[str, Any], n: int = 5) -> list[tuple[str, int]]:
    """The ``n`` most frequent drop reasons."""
    return sorted(block["dropped"].items(), key=lambda kv: (-kv[1], kv[0]))[:n]
