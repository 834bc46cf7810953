"""Accounting: every unit entering a stage leaves it kept or dropped with a named reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


class AccountingError(RuntimeError):
    """``in != kept + sum(dropped)``: a stage lost or invented records."""


@dataclass
class Tally:
    """Counts for one unit of one stage: ``in``, ``kept`` and ``dropped[<step>/<reason>]``."""

    unit: str
    n_in: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)

    def drop(self, reason: str, n: int = 1) -> None:
        """Count ``n`` units dropped for ``reason`` (``<step>/<reason>``)."""
        if "/" not in reason:
            raise ValueError(f"drop reason must be '<step>/<reason>', got {reason!r}")
        if n:
            self.dropped[reason] += n

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
