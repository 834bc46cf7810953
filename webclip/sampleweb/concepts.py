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
    # Beyond the default world's 20: more shapes for larger worlds (the ablation preset).
    "triangle": ("triangle", "Dreieck", "triángulo", "triangolo", "triângulo"),
    "square": ("carré", "Quadrat", "cuadrado", "quadrato", "quadrado"),
    "key": ("clé", "Schlüssel", "llave", "chiave", "chave"),
    "bell": ("cloche", "Glocke", "campana", "campana", "sino"),
    "anchor": ("ancre", "Anker", "ancla", "ancora", "âncora"),
    "boat": ("bateau", "Boot", "barco", "barca", "barco"),
    "car": ("voiture", "Auto", "coche", "automobile", "carro"),
    "kite": ("cerf-volant", "Drachen", "cometa", "aquilone", "pipa"),
    "leaf": ("feuille", "Blatt", "hoja", "foglia", "folha"),
    "crown": ("couronne", "Krone", "corona", "corona", "coroa"),
    "drop": ("goutte", "Tropfen", "gota", "goccia", "gota"),
    "egg": ("œuf", "Ei", "huevo", "uovo", "ovo"),
    "flag": ("drapeau", "Fahne", "bandera", "bandiera", "bandeira"),
    "hammer": ("marteau", "Hammer", "martillo", "martello", "martelo"),
    "hat": ("chapeau", "Hut", "sombrero", "cappello", "chapéu"),
    "ladder": ("échelle", "Leiter", "escalera", "scala", "escada"),
    "lamp": ("lampe", "Lampe", "lámpara", "lampada", "lâmpada"),
    "lock": ("cadenas", "Vorhängeschloss", "candado", "lucchetto", "cadeado"),
    "apple": ("pomme", "Apfel", "manzana", "mela", "maçã"),
    "rocket": ("fusée", "Rakete", "cohete", "razzo", "foguete"),
    "shield": ("bouclier", "Schild", "escudo", "scudo", "escudo"),
    "sword": ("épée", "Schwert", "espada", "spada", "espada"),
    "table": ("table", "Tisch", "mesa", "tavolo", "mesa"),
    "tent": ("tente", "Zelt", "tienda", "tenda", "barraca"),
    "trophy": ("trophée", "Pokal", "trofeo", "trofeo", "troféu"),
    "vase": ("vase", "Vase", "jarrón", "vaso", "vaso"),
    "wheel": ("roue", "Rad", "rueda", "ruota", "roda"),
    "candle": ("bougie", "Kerze", "vela", "candela", "vela"),
    "castle": ("château", "Burg", "castillo", "castello", "castelo"),
    "chair": ("chaise", "Stuhl", "silla", "sedia", "cadeira"),
    "door": ("porte", "Tür", "puerta", "porta", "porta"),
    "window": ("fenêtre", "Fenster", "ventana", "finestra", "janela"),
    "envelope": ("enveloppe", "Briefumschlag", "sobre", "busta", "envelope"),
    "fork": ("fourchette", "Gabel", "tenedor", "forchetta", "garfo"),
    "gift": ("cadeau", "Geschenk", "regalo", "regalo", "presente"),
    "ghost": ("fantôme", "Gespenst", "fantasma", "fantasma", "fantasma"),
    "hourglass": ("sablier", "Sanduhr", "reloj de arena", "clessidra", "ampulheta"),
    "pencil": ("crayon", "Bleistift", "lápiz", "matita", "lápis"),
    "snowman": ("bonhomme de neige", "Schneemann", "muñeco de nieve", "pupazzo di neve", "boneco de neve"),
    "mountain": ("montagne", "Berg", "montaña", "montagna", "montanha"),
    "bone": ("os", "Knochen", "hueso", "osso", "osso"),
    "cactus": ("cactus", "Kaktus", "cactus", "cactus", "cacto"),
    "carrot": ("carotte", "Karotte", "zanahoria", "carota", "cenoura"),
    "cherry": ("cerise", "Kirsche", "cereza", "ciliegia", "cereja"),
    "dumbbell": ("haltère", "Hantel", "mancuerna", "manubrio", "haltere"),
    "lollipop": ("sucette", "Lutscher", "piruleta", "lecca-lecca", "pirulito"),
    "shirt": ("chemise", "Hemd", "camisa", "camicia", "camisa"),
    "tie": ("cravate", "Krawatte", "corbata", "cravatta", "gravata"),
    "plane": ("avion", "Flugzeug", "avión", "aereo", "avião"),
    "clock": ("horloge", "Uhr", "reloj", "orologio", "relógio"),
    "spoon": ("cuillère", "Löffel", "cuchara", "cucchiaio", "colher"),
    "bucket": ("seau", "Eimer", "cubo", "secchio", "balde"),
    "glasses": ("lunettes", "Brille", "gafas", "occhiali", "óculos"),
    "pear": ("poire", "Birne", "pera", "pera", "pera"),
    "butterfly": ("papillon", "Schmetterling", "mariposa", "farfalla", "borboleta"),
    "sock": ("chaussette", "Socke", "calcetín", "calzino", "meia"),
    "comb": ("peigne", "Kamm", "peine", "pettine", "pente"),
    "axe": ("hache", "Axt", "hacha", "ascia", "machado"),
    "pentagon": ("pentagone", "Fünfeck", "pentágono", "pentagono", "pentágono"),
    "octagon": ("octogone", "Achteck", "octógono", "ottagono", "octógono"),
}
DEFAULT_CONCEPTS = 20  # the demo's world: the first 20 concepts
OTHER_LANGS = ("fr", "de", "es", "it", "pt")

HEAD_TO_TAIL = 100.0  # the most frequent concept is this many times the least frequent


def concept_names(n: int | None = None) -> list[str]:
    """Concept names, most frequent first: the first ``n`` (default: the default world's 20)."""
    return list(CONCEPTS)[: n or DEFAULT_CONCEPTS]


def concept_weights(n: int, head_to_tail: float = HEAD_TO_TAIL) -> list[float]:
    """Geometric long tail: weight 1 for the head down to ``1/head_to_tail`` for the tail."""
    if n == 1:
        return [1.0]
    return [head_to_tail ** (-i / (n - 1)) for i in range(n)]


def translate(concept: str, lang: str) -> str:
    """The concept's name in ``lang`` (``en`` or one of OTHER_LANGS)."""
    if lang == "en":
        return concept
    return CONCEPTS[concept][OTHER_LANGS.index(lang)]


def head_tail(names: list[str]) -> tuple[list[str], list[str]]:
    """The most frequent third and the least frequent third of the concepts."""
    k = max(1, len(names) // 3)
    return names[:k], names[-k:]
