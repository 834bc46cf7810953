"""Drop examples: per reason the k items with the smallest sha256 of their canonical JSON, however split."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from hypothesis import given, settings
from hypothesis import strategies as st

from webclip.beamio import CountingDoFn, DropExampleSink
from webclip.stats import DropExamples, Tally


def reference(items: list[tuple[str, dict]], k: int) -> dict[str, list[dict]]:
    """The rule as written in the brief: sort each reason's items by sha256 of canonical JSON, take k."""
    def digest(e: dict) -> str:
        return hashlib.sha256(json.dumps(e, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()

    by_reason: dict[str, dict[str, dict]] = {}
    for reason, e in items:
        by_reason.setdefault(reason, {})[digest(e)] = e
    return {r: [v for _, v in sorted(d.items())[:k]] for r, d in sorted(by_reason.items())}


ITEMS = st.lists(st.tuples(st.sampled_from(["filter/a", "lang/b", "match/c"]),
                           st.fixed_dictionaries({"uid": st.text(max_size=6), "n": st.integers(0, 50)})),
                 max_size=60)


@settings(max_examples=200, deadline=None)
@given(items=ITEMS, cuts=st.lists(st.integers(0, 60), max_size=4), k=st.integers(1, 6))
def test_any_partition_merged_in_any_order_keeps_the_k_smallest(items, cuts, k) -> None:
    bounds = sorted({0, len(items), *[min(c, len(items)) for c in cuts]})
    parts = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        acc = DropExamples(k)
        for reason, e in reversed(items[a:b]):
            acc.add(reason, e)
        parts.append(acc)
    merged = DropExamples(k)
    for acc in reversed(parts):
        merged.merge(acc)
    assert merged.as_dict() == reference(items, k)


def test_tally_counts_every_drop_and_keeps_examples_per_reason() -> None:
    t = Tally("rows", n_in=12)
    for i in range(10):
        t.drop("filter/odd" if i % 2 else "filter/even", example={"i": i})
    t.kept = 2
    t.check()
    record = t.examples_record()
    assert record["unit"] == "rows" and record["k"] == 5
    assert record["examples"] == reference([("filter/odd" if i % 2 else "filter/even", {"i": i}) for i in range(10)], 5)
    assert "examples" not in t.as_dict()  # stats.json stays counts only


class DropMultiplesFn(CountingDoFn):
    def process(self, n: int):
        if n % 3 == 0:
            yield from self.drop("test/multiple_of_3", example={"n": n})
        elif n % 7 == 0:
            yield from self.drop("test/multiple_of_7", example={"n": n})
        else:
            yield n


def _run(tmp: Path, workers: int) -> tuple[dict, list[int]]:
    path = tmp / f"drop_examples_{workers}.json"
    kept = tmp / f"kept_{workers}.json"
    opts = PipelineOptions(["--runner=DirectRunner", f"--direct_num_workers={workers}",
                            "--direct_running_mode=multi_threading"])
    with beam.Pipeline(options=opts) as p:
        sink = DropExampleSink()
        rows = p | beam.Create(list(range(1, 400))) | beam.Reshuffle() | "Drop" >> sink.counted(DropMultiplesFn())
        (rows | beam.combiners.ToList() | beam.Map(lambda xs: kept.write_text(json.dumps(sorted(xs)))))
        sink.write(p, str(path), "numbers", k=4)
    return json.loads(path.read_text()), json.loads(kept.read_text())


def test_beam_sink_writes_the_same_examples_whatever_the_workers(tmp_path: Path) -> None:
    one, kept = _run(tmp_path, 1)
    four, _ = _run(tmp_path, 4)
    assert one == four
    items = [("test/multiple_of_3" if n % 3 == 0 else "test/multiple_of_7", {"n": n})
             for n in range(1, 400) if n % 3 == 0 or n % 7 == 0]
    assert one["examples"] == reference(items, 4) and one["unit"] == "numbers"
    assert kept == [n for n in range(1, 400) if n % 3 and n % 7]


def test_beam_sink_with_no_drops_writes_an_empty_record(tmp_path: Path) -> None:
    path = tmp_path / "drop_examples.json"
    with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        sink = DropExampleSink()
        p | beam.Create([1, 2, 4]) | "Drop" >> sink.counted(DropMultiplesFn())
        sink.write(p, str(path), "numbers")
    assert json.loads(path.read_text())["examples"] == {}
