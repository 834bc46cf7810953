"""The streamed job split: every row once, the same bytes whatever the row order, balanced, big hosts spread."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webclip.dedupe.urls import registered_domain
from webclip.hashing import candidate_uid
from webclip.parquet import iter_rows, row_sort_key, write_rows
from webclip.records import CURATED_SCHEMA
from webclip.shards import jobs as jobs_mod


def curated_rows(n: int, seed: int = 0) -> list[dict]:
    """``n`` pairs: a third on one CDN domain (three hosts), the rest over a long tail of domains."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        if i % 3 == 0:
            url = f"https://img{i // 3 % 3}.bigcdn.net/{i}.jpg"
        else:
            d = min(int(rnd.paretovariate(1.2)), 400)
            url = f"https://www.site{d}.co.uk/p/{i}.jpg" if d % 2 else f"http://cdn.site{d}.com:8080/{i}.png"
        alt = f"a picture {i % 13}"
        rows.append({"uid": candidate_uid(url, alt), "image_url": url, "alt": alt, "page_url": "https://example.org/",
                     "page_lang": "en", "width": None, "height": None, "srcset_url": None, "source": "crawl",
                     "opt_out": False, "caption": alt, "lang": "en", "entry_ids": [i % 5], "keep_prob": 1.0})
    return rows


def split(tmp: Path, rows: list[dict], n_parts: int, samples_per_job: int) -> dict[str, bytes]:
    """Write ``rows`` as ``n_parts`` parts (in the order given), split them; every job input file's bytes."""
    tmp.mkdir(parents=True)
    size = -(-len(rows) // n_parts)
    paths = []
    for p in range(n_parts):
        path = tmp / f"part-{p:05d}.parquet"
        write_rows(path, rows[p * size:(p + 1) * size], CURATED_SCHEMA)
        paths.append(path)
    jobs_mod.write_job_inputs(paths, str(tmp / "jobs"), samples_per_job)
    return {p.name: p.read_bytes() for p in sorted((tmp / "jobs" / "_inputs").iterdir())}


@pytest.fixture(autouse=True)
def small_groups(monkeypatch) -> None:
    """Spill to disk at test size too: the bounded path is the one under test."""
    monkeypatch.setattr(jobs_mod, "GROUP_ROWS", 300)
    monkeypatch.setattr(jobs_mod, "SPILL_FANOUT", 3)


def test_same_rows_give_the_same_job_bytes_whatever_their_order_and_parts(tmp_path) -> None:
    rows = curated_rows(3000)
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    a = split(tmp_path / "a", rows, 1, 100)
    b = split(tmp_path / "b", shuffled, 4, 100)
    assert a == b and len(a) > 20


def test_every_row_lands_in_one_job_sorted_by_uid(tmp_path) -> None:
    rows = curated_rows(2500, seed=3)
    split(tmp_path / "s", rows, 3, 100)
    inputs = tmp_path / "s" / "jobs" / "_inputs"
    seen = []
    for path in sorted(inputs.glob("*.parquet")):
        got = list(iter_rows([path]))
        assert got == sorted(got, key=lambda r: row_sort_key(r, ("uid",)))
        seen += got
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    assert sorted(map(key, seen)) == sorted(map(key, rows))


def test_jobs_are_balanced_small_ones_whole_big_ones_spread_and_cut_hosts_listed(tmp_path) -> None:
    from webclip.fetch import host_key

    spj = 100
    rows = curated_rows(4000, seed=5)
    split(tmp_path / "s", rows, 2, spj)
    inputs = tmp_path / "s" / "jobs" / "_inputs"
    jobs_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    sizes = {}
    for path in sorted(inputs.glob("*.parquet")):
        got = list(iter_rows([path]))
        sizes[path.stem] = len(got)
        for r in got:
            jobs_of["domain", registered_domain(r["image_url"])].add(path.stem)
            jobs_of["host", host_key(r["image_url"])].add(path.stem)
    counts = Counter(k for r in rows for k in (("domain", registered_domain(r["image_url"])),
                                                 ("host", host_key(r["image_url"]))))
    target = len(rows) / len(sizes)
    assert len(sizes) == len(rows) // spj and max(sizes.values()) <= 1.25 * target and min(sizes.values()) >= 0.75 * target
    for (kind, name), c in counts.items():
        if c <= spj // jobs_mod.LARGE_SHARE:
            assert len(jobs_of[kind, name]) == 1, name  # small domains and hosts stay whole
        elif kind == "host":
            assert len(jobs_of[kind, name]) <= 2 if c <= spj else len(jobs_of[kind, name]) >= c // spj, name
        elif c > spj:
            assert len(jobs_of[kind, name]) >= 2, name  # a big registered domain is spread
    shared = json.loads((inputs / jobs_mod.SHARED_FILE).read_text())
    cut = {name: js for (kind, name), js in jobs_of.items() if kind == "host" and len(js) > 1}
    assert {h: set(js) for h, js in shared.items()} == cut
    assert all(len(shared[f"img{i}.bigcdn.net"]) >= 4 for i in range(3))  # 445 pairs each over jobs of 100


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 30), max_size=300), st.integers(1, 12))
def test_misra_gries_keeps_every_item_above_n_over_capacity_plus_one(items, capacity) -> None:
    kept = jobs_mod.misra_gries(map(str, items), capacity)
    counts = Counter(map(str, items))
    assert len(kept) <= capacity
    assert {x for x, c in counts.items() if c > len(items) / (capacity + 1)} <= set(kept)


def test_a_jobs_arrow_sorted_bytes_equal_write_rows(tmp_path) -> None:
    import pyarrow as pa

    rows = curated_rows(500, seed=9)
    rows += [dict(r, page_url="https://example.org/other") for r in rows[:20]]  # repeated uids: whole-row ties
    random.Random(1).shuffle(rows)
    write_rows(tmp_path / "ref.parquet", rows, CURATED_SCHEMA)
    assert jobs_mod.job_bytes(pa.Table.from_pylist(rows, schema=CURATED_SCHEMA)) == (tmp_path / "ref.parquet").read_bytes()


def test_write_parts_sizes_buckets_from_the_row_count_and_stays_sorted(tmp_path) -> None:
    from apache_beam.testing.test_pipeline import TestPipeline

    from webclip.beamio import WriteParts

    rows = curated_rows(1000, seed=11)
    with TestPipeline() as p:
        _ = p | beam.Create(rows) | WriteParts(str(tmp_path / "many"), "curated", 2, max_part_rows=100)
        _ = p | "Few" >> beam.Create(rows[:150]) | "WriteFew" >> WriteParts(str(tmp_path / "few"), "curated", 2,
                                                                            max_part_rows=100)
    many = sorted((tmp_path / "many").glob("part-*.parquet"))
    sizes = [pq.ParquetFile(p).metadata.num_rows for p in many]
    assert len(many) == 10 and max(sizes) <= 160  # 10 uid ranges of about 100 rows
    got = list(iter_rows(many))
    assert got == sorted(rows, key=lambda r: row_sort_key(r, ("uid",)))
    assert len(list((tmp_path / "few").glob("part-*.parquet"))) == 2  # parts_n when the rows are few
