"""The ablation's statistics: t-intervals against published tables, paired differences, head and tail."""

from __future__ import annotations

import math

import pytest

from webclip.ablation import (
    AblationConfig,
    compare,
    group_top1,
    head_tail_classes,
    interval,
    t_quantile,
    trial_scores,
)
from webclip.config import ConfigError, build

# Two-sided 95 % (p = 0.975) and 90 % (p = 0.95) critical values of Student's t, as printed in standard tables.
T_TABLE = {(0.975, 1): 12.706, (0.975, 2): 4.303, (0.975, 4): 2.776, (0.975, 9): 2.262, (0.975, 29): 2.045,
           (0.95, 4): 2.132, (0.95, 9): 1.833}


@pytest.mark.parametrize(("p", "df"), sorted(T_TABLE))
def test_t_quantile_matches_the_printed_table(p: float, df: int) -> None:
    assert t_quantile(p, df) == pytest.approx(T_TABLE[(p, df)], abs=6e-4)


def test_t_quantile_agrees_with_scipy_where_installed() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 3, 7, 20, 100):
        for p in (0.9, 0.975, 0.995):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-6)


def test_interval_of_a_textbook_sample() -> None:
    iv = interval([0.30, 0.32, 0.28, 0.31, 0.29], 0.95)
    assert iv["mean"] == pytest.approx(0.30) and iv["sd"] == pytest.approx(math.sqrt(0.00025))
    assert iv["half_width"] == pytest.approx(2.776 * math.sqrt(0.00025) / math.sqrt(5), abs=1e-4)
    assert iv["low"] < 0.30 < iv["high"]


def test_paired_differences_resolve_what_the_arm_intervals_cannot() -> None:
    # Seeds move both arms together (a shared init); balanced is 2 points ahead on every seed.
    base = [0.20, 0.30, 0.25, 0.35, 0.22]
    runs = {"balanced": [{"seed": s, "all": b + 0.02, "head": b, "tail": b + 0.02 * (s % 2 * 2 - 1)}
                         for s, b in enumerate(base)],
            "unbalanced": [{"seed": s, "all": b, "head": b, "tail": b} for s, b in enumerate(base)]}
    report = compare(runs, 0.95)
    arms = report["arms"]
    assert arms["balanced"]["all"]["low"] < arms["unbalanced"]["all"]["high"]  # the arm intervals overlap
    d = report["paired_difference"]
    assert d["all"]["mean"] == pytest.approx(0.02) and d["all"]["resolved"] and "raises" in d["all"]["verdict"]
    assert d["head"]["mean"] == pytest.approx(0.0) and not d["head"]["resolved"]
    assert not d["tail"]["resolved"] and "includes 0" in d["tail"]["verdict"]
    assert report["paired_seeds"] == [0, 1, 2, 3, 4]


def test_head_and_tail_come_from_training_counts_not_class_order() -> None:
    classnames = ["star", "Heart", "moon", "cross", "arrow", "ring"]
    counts = {"star": 5, "heart": 90, "moon": 40, "cross": 40, "arrow": 1, "ring": 200}
    head, tail = head_tail_classes(classnames, counts, 1 / 3)
    assert head == ["ring", "Heart"] and tail == ["star", "arrow"]
    assert head_tail_classes(classnames, {}, 0.5) == (["star", "Heart", "moon"], ["cross", "arrow", "ring"])


def test_group_scores_from_the_confusion_matrix() -> None:
    confusion = [[3, 1, 0], [0, 2, 2], [1, 1, 8]]  # rows: true class
    assert group_top1(confusion, [0, 1, 2]) == pytest.approx(13 / 18)
    scores = trial_scores(confusion, ["a", "b", "c"], head=["c"], tail=["a", "b"])
    assert scores == pytest.approx({"all": 13 / 18, "head": 0.8, "tail": 5 / 8})


def test_config_needs_two_seeds() -> None:
    assert build(AblationConfig, {"seeds": 2}).seeds == 2
    with pytest.raises(ConfigError):
        build(AblationConfig, {"seeds": 1})


def test_unbalanced_samples_are_as_large_as_the_curated_set_and_drawn_by_seed(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from webclip.ablation import pool_counts, steps_done, unbalanced_sample

    run = tmp_path / "run"
    (run / "curated" / "pool").mkdir(parents=True)
    pool = [{"uid": f"{i:04d}", "caption": f"c{i}", "kept": i % 3 == 0} for i in range(300)]
    pq.write_table(pa.Table.from_pylist(pool[:150]), run / "curated" / "pool" / "part-00000.parquet")
    pq.write_table(pa.Table.from_pylist(pool[150:]), run / "curated" / "pool" / "part-00001.parquet")
    (run / "curated" / "data").mkdir()
    pq.write_table(pa.Table.from_pylist([r for r in pool if r["kept"]]), run / "curated" / "data" / "part-00000.parquet")
    a, again, b = unbalanced_sample(run, 0), unbalanced_sample(run, 0), unbalanced_sample(run, 1)
    assert len(a) == len(b) == 100 and a == again and {r["uid"] for r in a} != {r["uid"] for r in b}
    assert all("kept" not in r for r in a) and len({r["uid"] for r in a}) == 100
    assert sum(r["kept"] for r in pool if r["uid"] in {x["uid"] for x in a}) < 60  # not the balanced set again
    rows = [{"entry": "Star", "lang": "en", "count_before": 7, "count_after": 3},
            {"entry": "star", "lang": "fr", "count_before": 2, "count_after": 2},  # counted per language
            {"entry": "moon", "lang": "en", "count_before": 1, "count_after": 1}]
    (run / "curated" / "query_counts").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), run / "curated" / "query_counts" / "part-00000.parquet")
    assert pool_counts(run) == {"star": 9, "moon": 1}
    trial = tmp_path / "trial"
    assert steps_done(trial, 50) == 0
    (trial / "train").mkdir(parents=True)
    (trial / "train" / "metrics.jsonl").write_text('{"step": 10}\n{"step": 20}\n')
    assert steps_done(trial, 50) == 20
    (trial / "train" / "_SUCCESS").write_text("")
    assert steps_done(trial, 50) == 50
