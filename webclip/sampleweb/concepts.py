"""The sample web's concepts: names, translations and a long-tailed frequency."""

from __future__ import annotations

# English name and its fr, de, es, it, pt translations (plain dictionary words).
CONCEPTS: dict[str, tuple[str, str, str, str, str]] = {
    "star": ("étoile", "Stern", "estrella", "stella", "estrela"),
    "heart": ("cœur", "Herz", "corazón", "cuore", "coração"),
    "moon": ("lune", "Mond", "luna", "luna", "lua"),
    "cross": ("croix", "Kreuz", "cruz", "croce", "cruz"),
    "arrow": ("flèche", "Pfeil", "flecha", "freccia", "seta"),
    "ring": ("anneau", "Ring", "anillo", "anello", "anel"),
    "diamond": ("losange", "Raute", "rombo", "rombo", "losango"),
    "hexagon": ("hexagone", "Sechseck", "hexágono", "esagono", "hexágono"),
    "tree": ("arbre", "Baum", "árbol", "albero", "árvore"),
    "house": ("maison", "Haus", "casa", "casa", "casa"),
    "fish": ("poisson", "Fisch", "pez", "pesce", "peixe"),
    "umbrella": ("parapluie", "Regenschirm", "paraguas", "ombrello", "guarda-chuva"),
    "mushroom": ("champignon", "Pilz", "champiñón", "fungo", "cogumelo"),
    "lightning": ("éclair", "Blitz", "rayo", "fulmine", "raio"),
    "cloud": ("nuage", "Wolke", "nube", "nuvola", "nuvem"),
    "flower": ("fleur", "Blume", "flor", "fiore", "flor"),
    "sun": ("soleil", "Sonne", "sol", "sole", "sol"),
    "ball": ("balle", "Ball", "pelota", "palla", "bola"),
    "cup": ("tasse", "Tasse", "taza", "tazza", "xícara"),
    "bottle": ("bouteille", "Flasche", "botella", "bottiglia", "garrafa"),
}
OTHER_LANGS = ("fr", "de", "es", "it", "pt")

HEAD_TO_TAIL = 100.0  # the most frequent concept is this many times the least frequent


def concept_names(n: int | None = None) -> list[str]:
    """Concept names, most frequent first; ``n`` takes the first ``n``."""
    names = list(CONCEPTS)
    return names[: n or len(names)]


def concept_weights(n: int) -> list[float]:
    """Geometric long tail: weight 1 for the head down to 1/HEAD_TO_TAIL for the tail."""
    if n == 1:
        return [1.0]
    return [HEAD_TO_TAIL ** (-i / (n - 1)) for i in range(n)]


def translate(concept: str, lang: str) -> str:
    """The concept's name in ``lang`` (``en`` or one of OTHER_LANGS)."""
    if lang == "en":
        return concept
    return CONCEPTS[concept][OTHER_LANGS.index(lang)]


def head_tail(names: list[str]) -> tuple[list[str], list[str]]:
    """The most frequent third and the least frequent third of the concepts."""
    k = max(1, len(names) // 3)
    return names[:k], names[-k:]
