"""Balancing: cap each query entry at t pairs in expectation, decided by hash, not random state.

Counts are pooled over languages (``balance_by="entry"``, MetaCLIP v1) or kept per (language, entry)
(``"entry_lang"``, MetaCLIP 2): then the anchor language (English) gets ``t`` and every other language
the threshold at which its own tail holds the same share of its matches as the anchor's tail does.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence

from webclip.hashing import unit_draw

POOLED = "*"  # the one "language" of pooled counts


def threshold(matched_pairs: int, t: int, fraction: float | None) -> float:
    """The per-entry cap: ``t``, or ``fraction`` of the matched pairs when a fraction is set."""
    if fraction is not None:
        return max(1.0, fraction * matched_pairs)
    return float(t)


def entry_probability(count: int, t: float) -> float:
    """p_q = min(1, t / c_q)."""
    return 1.0 if count <= t else t / count


def keep_probability(entry_keys: Sequence[Hashable], counts: Mapping[Hashable, int], t: float) -> float:
    """1 - prod(1 - p_q) over the pair's matched entries (keyed as ``counts`` is)."""
    miss = math.prod(1.0 - entry_probability(counts[q], t) for q in entry_keys)
    return 1.0 - miss


def keep(uid: str, seed: int, probability: float) -> bool:
    """Keep the pair when its seeded hash draw falls below ``probability``."""
    return probability >= 1.0 or unit_draw(seed, uid) < probability


def balance_group(lang: str | None, by: str) -> str:
    """The counting group of a pair: its language under ``entry_lang``, else the pooled group."""
    return (lang or "") if by == "entry_lang" else POOLED


def tail_share(counts: Iterable[int], t: float) -> float:
    """Share of all matches held by entries counted below ``t`` (MetaCLIP's t -> p)."""
    counts = list(counts)
    total = sum(counts)
    return sum(c for c in counts if c < t) / total if total else 1.0


def threshold_for_share(counts: Iterable[int], share: float) -> float:
    """The count whose cumulative share (counts sorted ascending) is nearest ``share``, first on ties (p -> t)."""
    ordered = sorted(counts)
    total = sum(ordered)
    best, best_gap, running = float(ordered[0]), math.inf, 0
    for c in ordered:
        running += c
        gap = abs(running / total - share)
        if gap < best_gap:
            best, best_gap = float(c), gap
    return best


def group_thresholds(counts: Mapping[tuple[str, int], int], pairs: Mapping[str, int], t: int,
                     fraction: float | None, anchor: str) -> dict[str, float]:
    """The cap of each counting group: ``fraction`` of its pairs, else ``t`` for the anchor (or the pooled
    group) and, for other languages, the count at which their tail share equals the anchor's."""
    per_group: dict[str, list[int]] = {}
    for (group, _), c in sorted(counts.items()):
        per_group.setdefault(group, []).append(c)
    if fraction is not None:
        return {g: threshold(pairs.get(g, 0), t, fraction) for g in sorted(per_group)}
    if anchor not in per_group:
        return {g: float(t) for g in sorted(per_group)}
    share = tail_share(per_group[anchor], t)
    return {g: float(t) if g == anchor else threshold_for_share(cs, share) for g, cs in sorted(per_group.items())}
