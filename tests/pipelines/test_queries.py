"""The query-list builder on a tiny WordNet-format fixture, a titles file and a bigram corpus."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq

from webclip.pipelines.queries import build_list, pmi_bigrams, wordnet_lemmas

LICENCE = "  1 This software and database is being provided to you, the LICENSEE, by Princeton University\n"
NOUNS = LICENCE + (
    "02121620 05 n 03 cat 0 true_cat 0 house_cat 0 001 @ 02120997 n 0000 | feline mammal\n"
    "02084071 05 n 02 dog 0 domestic_dog 0 000 | a member of the genus Canis\n"
    "09366317 17 n 01 New_York 0 000 | a city\n"
)
ADJS = LICENCE + "00013887 00 s 02 big(a) 0 large 0 000 | above average in size\n"


def _fixture(tmp_path):
    wn = tmp_path / "wordnet"
    wn.mkdir()
    (wn / "data.noun").write_text(NOUNS)
    (wn / "data.adj").write_text(ADJS)
    return wn


def test_wordnet_fixture_is_parsed(tmp_path) -> None:
    assert list(wordnet_lemmas(_fixture(tmp_path))) == ["cat", "true_cat", "house_cat", "dog", "domestic_dog",
                                                       "New_York", "big", "large"]


def test_priority_dedupe_and_budget() -> None:
    sources = {"wordnet": [("cat", 1), ("New_York", 1)], "wordfreq": [("the", 0.1), ("Cat", 0.01), ("new york", 0.001)]}
    entries, drops = build_list(sources, ["wordnet", "wordfreq"], size=3)
    assert [e["entry"] for e in entries] == ["cat", "New York", "the"]
    assert entries[0]["sources"] == ["wordnet", "wordfreq"]
    assert [e["variants"] for e in entries] == [["Cat"], ["new york"], []]  # merged spellings are recorded
    assert drops == {"queries/key_collision": 2}
    entries, drops = build_list(sources, ["wordfreq", "wordnet"], size=2)
    assert [e["entry"] for e in entries] == ["the", "Cat"]
    assert drops == {"queries/over_budget": 2, "queries/key_collision": 1}


def test_empty_keys_and_exact_duplicates_are_named() -> None:
    sources = {"titles": [("...", 0), ("❤️", 0), ("c++", 0), ("c#", 0), ("C", 0), ("-", 0)],
               "wordfreq": [("c++", 0.1), ("c", 0.01)]}
    entries, drops = build_list(sources, ["titles", "wordfreq"], size=10)
    assert [(e["entry"], e["match_key"]) for e in entries] == [("❤️", "❤"), ("c++", "c++"), ("c#", "c#"), ("C", "c")]
    assert drops == {"queries/empty_key": 2, "queries/duplicate": 1, "queries/key_collision": 1}
    assert entries[3]["variants"] == ["c"] and entries[1]["sources"] == ["titles", "wordfreq"]


def test_pmi_prefers_collocations() -> None:
    uni = {"new": 10, "york": 10, "the": 100, "cat": 10}
    bi = {("new", "york"): 10, ("the", "cat"): 10}
    ranked = pmi_bigrams(uni, bi, min_count=5, min_pmi=0.0)
    assert ranked[0][0] == "new york" and ranked[0][1] > ranked[1][1]


def test_queries_command_end_to_end(tmp_path) -> None:
    wn = _fixture(tmp_path)
    titles = tmp_path / "titles.txt"
    titles.write_text("Mona Lisa\nEiffel Tower\ncat\n")
    corpus = tmp_path / "alts.txt"
    corpus.write_text("a photo of hot dogs\nhot dogs for sale\nhot dogs and mustard\n" * 4 + "the cat sat on the mat\n" * 3)
    cfg = {"queries": {"wordnet_path": str(wn), "titles_file": str(titles), "bigram_corpus": [str(corpus)],
                       "bigram_min_count": 5, "bigram_min_pmi": 1.0, "wordfreq_max": 50, "size": 40}}
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "webclip.cli", "queries", "--run", str(run), "--config", str(tmp_path / "c.json")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    entries = json.loads((run / "queries" / "queries.json").read_text())
    assert len(entries) == 40  # WordNet first (its priority), then titles, bigrams, frequent words
    assert set(entries[:8]) == {"cat", "true cat", "house cat", "dog", "domestic dog", "New York", "big", "large"}
    assert "hot dogs" in entries and "Eiffel Tower" in entries and "the" in entries
    table = pq.read_table(run / "queries" / "queries.parquet").to_pylist()
    cat = next(r for r in table if r["entry"] == "cat")
    assert cat["sources"] == ["wordnet", "titles"] and cat["source"] == "wordnet"
    assert cat["match_key"] == "cat" and cat["variants"] == []
    assert next(r for r in table if r["entry"] == "New York")["match_key"] == "new york"
    stats = json.loads((run / "queries" / "stats.json").read_text())
    assert stats["in"] == stats["kept"] + sum(stats["dropped"].values())
    assert set(stats["dropped"]) <= {"queries/duplicate", "queries/key_collision", "queries/empty_key",
                                     "queries/over_budget"}


def test_bigram_corpus_folders_and_counts_through_temp_location(tmp_path) -> None:
    """A text file and a folder of candidate parts are both read; the workers' counts come back through a
    scratch file under --temp_location (removed once read), not the stage folder."""
    import pyarrow as pa

    from webclip.pipelines.queries import QueriesConfig, mine_bigrams

    texts = ["hot dogs for sale", "hot dogs and mustard", "the cat sat on the mat", "a photo of hot dogs"] * 3
    (tmp_path / "alts.txt").write_text("\n".join(texts[:6]) + "\n")
    parts = tmp_path / "candidates" / "data"  # a crawl's stage folder: its table is in data/
    parts.mkdir(parents=True)
    pq.write_table(pa.table({"alt": texts[6:]}), parts / "part-00000.parquet")
    temp, stage = tmp_path / "temp", tmp_path / "stage"
    cfg = QueriesConfig(bigram_corpus=[str(tmp_path / "alts.txt"), str(parts.parent)], bigram_min_count=4,
                        bigram_min_pmi=0.0,
                        direct_running_mode="in_memory", direct_num_workers=1, pipeline_args=[f"--temp_location={temp}"])
    got = mine_bigrams(cfg, str(stage))
    assert [(b, c) for b, _, c in got] == [("hot dogs", 9)]  # 9 in both files together, the rest under 4
    assert temp.is_dir() and not list(temp.iterdir()) and not stage.exists()
