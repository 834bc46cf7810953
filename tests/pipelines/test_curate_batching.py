"""Curate's cheaper Beam shape: one dedupe shuffle, entry counts per bundle, one language answer per caption."""

from __future__ import annotations

from collections import Counter

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st

from webclip.beamio import DROP_EXAMPLES, CountKeys, collect_counters
from webclip.dedupe.urls import image_url_key
from webclip.hashing import candidate_uid
from webclip.pipelines.curate import Dedupe, DedupeFn

URLS = ["http://a.example/x.jpg", "http://A.example/x.jpg", "http://a.example/x.jpg#frag", "http://b.example/y.png",
        "http://b.example/y.png?s=1", "https://c.example/z.jpg"]
ALTS = ["a red car", "a blue car", "two dogs", ""]
PAGES = ["http://p1/", "http://p2/", "http://p3/", None]


def reference_dedupe(rows: list[dict]) -> tuple[list[dict], Counter]:
    """The documented rule, step by step: per uid the smallest page URL, then per image URL key the smallest uid."""
    drops: Counter = Counter()
    by_uid: dict[str, list[dict]] = {}
    for r in rows:
        by_uid.setdefault(r["uid"], []).append(r)
    firsts = []
    for group in by_uid.values():
        group = sorted(group, key=lambda r: r["page_url"] or "")
        firsts.append(group[0])
        drops["dedupe/duplicate_uid"] += len(group) - 1
    by_url: dict[str, list[dict]] = {}
    for r in firsts:
        by_url.setdefault(image_url_key(r["image_url"]), []).append(r)
    kept = []
    for group in by_url.values():
        group = sorted(group, key=lambda r: r["uid"])
        kept.append(group[0])
        drops["dedupe/duplicate_url"] += len(group) - 1
    return kept, drops


def candidate(url: str, alt: str, page: str | None) -> dict:
    """A row that keeps the uid contract."""
    return {"uid": candidate_uid(url, alt), "image_url": url, "alt": alt, "page_url": page}


rows_strategy = st.lists(st.builds(candidate, st.sampled_from(URLS), st.sampled_from(ALTS), st.sampled_from(PAGES)),
                         max_size=30)


def one_shuffle_dedupe(rows: list[dict]) -> tuple[list[dict], Counter]:
    """DedupeFn over each image URL key's group, as the single GroupByKey feeds it."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(image_url_key(r["image_url"]), []).append(r)
    kept, drops = [], Counter()
    for kv in groups.items():
        for out in DedupeFn().process(kv):
            if isinstance(out, beam.pvalue.TaggedOutput):
                assert out.tag == DROP_EXAMPLES
                drops[out.value[0]] += 1
            else:
                kept.append(out)
    return kept, drops


def uids(rows: list[dict]) -> list[tuple]:
    return sorted((r["uid"], r["page_url"] or "") for r in rows)


@settings(max_examples=200, deadline=None)
@given(rows_strategy)
def test_one_shuffle_dedupe_equals_the_two_step_rule(rows: list[dict]) -> None:
    kept, drops = one_shuffle_dedupe(rows)
    want_kept, want_drops = reference_dedupe(rows)
    assert uids(kept) == uids(want_kept)
    assert +drops == +want_drops
    assert len(kept) + sum(drops.values()) == len(rows)


def test_dedupe_in_beam_counts_every_drop() -> None:
    rows = [candidate(u, a, p) for u in URLS for a in ALTS[:2] for p in PAGES[:2]]
    want_kept, want_drops = reference_dedupe(rows)
    p = BeamTestPipeline()
    kept = p | beam.Create(rows) | Dedupe()
    assert_that(kept | beam.Map(lambda r: r["uid"]), equal_to([r["uid"] for r in want_kept]))
    result = p.run()
    result.wait_until_finish()
    assert collect_counters(result) == dict(want_drops)


@settings(max_examples=5, deadline=None)
@given(st.lists(st.lists(st.integers(0, 5), max_size=6), max_size=40))
def test_count_keys_equals_a_plain_count(lists: list[list[int]]) -> None:
    want = Counter(k for ks in lists for k in ks)
    with BeamTestPipeline() as p:
        got = p | beam.Create(lists, reshuffle=False) | CountKeys(lambda ks: ks)
        assert_that(got, equal_to(list(want.items())))


def test_language_cache_gives_the_detectors_answer_within_its_bound() -> None:
    from webclip.pipelines.config import CurateConfig
    from webclip.pipelines.curate import LanguageMatchFn
    from webclip.pipelines.langid import best_language, get_detector

    fn = LanguageMatchFn("unused.json", CurateConfig(lang_detector="fasttext"))
    fn.detect = get_detector("fasttext")
    fn.CACHE_TEXTS = 3
    fn.start_bundle()
    captions = ["a red car on the road", "ein rotes Auto auf der Straße", "une voiture rouge", "a red car on the road",
                "un coche rojo en la carretera", "ein rotes Auto auf der Straße"] * 3
    got = [fn.language(c) for c in captions]
    assert got == [best_language(fn.detect(c)) for c in captions]
    assert got[:3] == ["en", "de", "fr"]
    assert len(fn.langs) <= fn.CACHE_TEXTS


def test_a_row_breaking_the_uid_contract_is_dropped_by_name_so_no_uid_survives_twice() -> None:
    from webclip.pipelines.config import CurateConfig
    from webclip.pipelines.curate import PrepareFn

    good = candidate("http://a.example/cat.jpg", "a grey cat on a sofa", "http://p1/")
    foreign = {**candidate("http://b.example/dog.jpg", "a brown dog in a park", "http://p2/"), "uid": good["uid"]}
    p = BeamTestPipeline()
    kept = p | beam.Create([good, foreign]) | beam.ParDo(PrepareFn(CurateConfig())) | Dedupe()
    assert_that(kept | beam.Map(lambda r: (r["uid"], r["image_url"])), equal_to([(good["uid"], good["image_url"])]))
    result = p.run()
    result.wait_until_finish()
    assert collect_counters(result) == {"input/uid_not_contract": 1}
