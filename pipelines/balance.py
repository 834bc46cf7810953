"""Balancing: cap each query entry at t pairs in expectation, decided by hash, not random state."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from webclip.hashing import unit_draw


def threshold(matched_pairs: int, t: int, fraction: float | None) -> float:
    """The per-entry cap: ``t``, or ``fraction`` of the matched pairs when a fraction is set."""
    if fraction is not None:
        return max(1.0, fraction * matched_pairs)
    return float(t)


def entry_probability(count: int, t: float) -> float:
    """p_q = min(1, t / c_q)."""
    return 1.0 if count <= t else t / count


def keep_probability(entry_ids: Sequence[int], counts: Mapping[int, int], t: float) -> float:
    """1 - prod(1 - p_q) over the pair's matched entries."""
    miss = math.prod(1.0 - entry_probability(counts[q], t) for q in entry_ids)
    return 1.0 - miss


def keep(uid: str, seed: int, probability: float) -> bool:
    """Keep the pair when its seeded hash draw falls below ``probability``."""
    return probability >= 1.0 or unit_draw(seed, uid) < probability
