"""Procedural drawings: each concept is a shape; colour, texture, size and background vary freely."""

from __future__ import annotations

import colorsys
import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

Poly = list[tuple[float, float]]
Part = tuple[bool, Poly]  # (add, polygon in unit coordinates [-1, 1]^2); False cuts a hole


def _circle(cx: float, cy: float, rx: float, ry: float | None = None, a0: float = 0.0, a1: float = 360.0, n: int = 28) -> Poly:
    """Points of an ellipse arc (a full ellipse by default); arcs are closed through the chord."""
    ry = rx if ry is None else ry
    steps = [a0 + (a1 - a0) * i / n for i in range(n + 1)]
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a))) for a in steps]


def _rect(x0: float, y0: float, x1: float, y1: float) -> Poly:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _star() -> list[Part]:
    pts = [((1.0 if i % 2 == 0 else 0.42) * math.cos(math.radians(-90 + 36 * i)),
            (1.0 if i % 2 == 0 else 0.42) * math.sin(math.radians(-90 + 36 * i))) for i in range(10)]
    return [(True, pts)]


def _heart() -> list[Part]:
    pts = []
    for i in range(40):
        t = 2 * math.pi * i / 40
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        pts.append((x / 17, -y / 17 + 0.1))
    return [(True, pts)]


def _regular(n: int, r: float = 1.0, rot: float = 0.0) -> Poly:
    return [(r * math.cos(math.radians(rot + 360 * i / n)), r * math.sin(math.radians(rot + 360 * i / n))) for i in range(n)]


SHAPES: dict[str, Callable[[], list[Part]]] = {
    "star": _star,
    "heart": _heart,
    "moon": lambda: [(True, _circle(0, 0, 1)), (False, _circle(0.45, -0.15, 0.85))],
    "cross": lambda: [(True, _rect(-0.25, -1, 0.25, 1)), (True, _rect(-1, -0.25, 1, 0.25))],
    "arrow": lambda: [(True, _rect(-1, -0.18, 0.25, 0.18)), (True, [(0.2, -0.65), (1, 0), (0.2, 0.65)])],
    "ring": lambda: [(True, _circle(0, 0, 1)), (False, _circle(0, 0, 0.6))],
    "diamond": lambda: [(True, [(0, -1), (0.62, 0), (0, 1), (-0.62, 0)])],
    "hexagon": lambda: [(True, _regular(6))],
    "tree": lambda: [(True, [(0, -1), (0.75, 0.45), (-0.75, 0.45)]), (True, _rect(-0.15, 0.45, 0.15, 1))],
    "house": lambda: [(True, _rect(-0.7, -0.1, 0.7, 1)), (True, [(-0.95, -0.1), (0, -0.95), (0.95, -0.1)]), (False, _rect(-0.2, 0.4, 0.2, 1))],
    "fish": lambda: [(True, _circle(-0.15, 0, 0.7, 0.42)), (True, [(0.4, 0), (1, -0.5), (1, 0.5)]), (False, _circle(-0.52, -0.1, 0.09))],
    "umbrella": lambda: [(True, _circle(0, 0, 1, 0.8, 180, 360)), (True, _rect(-0.07, -0.05, 0.07, 0.95))],
    "mushroom": lambda: [(True, _circle(0, 0.05, 1, 0.75, 180, 360)), (True, _rect(-0.28, 0.0, 0.28, 0.9))],
    "lightning": lambda: [(True, [(0.25, -1), (-0.55, 0.15), (-0.02, 0.15), (-0.3, 1), (0.6, -0.25), (0.08, -0.25), (0.45, -1)])],
    "cloud": lambda: [(True, _circle(-0.5, 0.15, 0.42)), (True, _circle(0.05, -0.15, 0.55)), (True, _circle(0.55, 0.15, 0.4)), (True, _rect(-0.5, 0.15, 0.55, 0.55))],
    "flower": lambda: [(True, _circle(0.6 * math.cos(math.radians(72 * i - 90)), 0.6 * math.sin(math.radians(72 * i - 90)), 0.38)) for i in range(5)] + [(False, _circle(0, 0, 0.3)), (True, _circle(0, 0, 0.18))],
    "sun": lambda: [(True, _circle(0, 0, 0.5))] + [(True, [(0.62 * math.cos(math.radians(a - 9)), 0.62 * math.sin(math.radians(a - 9))), (math.cos(math.radians(a)), math.sin(math.radians(a))), (0.62 * math.cos(math.radians(a + 9)), 0.62 * math.sin(math.radians(a + 9)))]) for a in range(0, 360, 45)],
    "ball": lambda: [(True, _circle(0, 0, 0.95))],
    "cup": lambda: [(True, _circle(0.62, 0, 0.38)), (False, _circle(0.62, 0, 0.2)), (True, [(-0.65, -0.7), (0.6, -0.7), (0.45, 0.8), (-0.5, 0.8)])],
    "bottle": lambda: [(True, _rect(-0.45, -0.15, 0.45, 1)), (True, [(-0.45, -0.15), (-0.15, -0.5), (0.15, -0.5), (0.45, -0.15)]), (True, _rect(-0.14, -0.95, 0.14, -0.45))],
}


def _adds(*polys: Poly) -> list[Part]:
    return [(True, p) for p in polys]


def _leaf() -> list[Part]:
    side = [(0.6 * math.sin(math.pi * i / 20) ** 1.4, -math.cos(math.pi * i / 20)) for i in range(21)]
    return [(True, side + [(-x, y) for x, y in reversed(side)]), (False, _rect(-0.03, -0.75, 0.03, 0.75))]


def _wheel() -> list[Part]:
    spokes = [[(0.06 * math.cos(math.radians(a + 90)), 0.06 * math.sin(math.radians(a + 90))),
               (0.85 * math.cos(math.radians(a)), 0.85 * math.sin(math.radians(a))),
               (-0.85 * math.cos(math.radians(a)), -0.85 * math.sin(math.radians(a)))] for a in (0, 60, 120)]
    return [(True, _circle(0, 0, 1)), (False, _circle(0, 0, 0.78)), *_adds(*spokes), (True, _circle(0, 0, 0.18))]


# Shapes beyond the default world's 20, for larger worlds (the ablation preset).
SHAPES |= {
    "triangle": lambda: _adds([(0, -0.9), (0.95, 0.75), (-0.95, 0.75)]),
    "square": lambda: _adds(_rect(-0.75, -0.75, 0.75, 0.75)),
    "pentagon": lambda: _adds(_regular(5, rot=-90)),
    "octagon": lambda: _adds(_regular(8, rot=22.5)),
    "key": lambda: [(True, _circle(-0.55, 0, 0.4)), (False, _circle(-0.55, 0, 0.18)),
                    *_adds(_rect(-0.2, -0.09, 0.95, 0.09), _rect(0.5, 0.09, 0.65, 0.4), _rect(0.78, 0.09, 0.93, 0.32))],
    "bell": lambda: _adds(_circle(0, -0.2, 0.6, 0.65, 180, 360), [(-0.6, -0.2), (0.6, -0.2), (0.9, 0.6), (-0.9, 0.6)],
                          _circle(0, 0.75, 0.17)),
    "anchor": lambda: [(True, _circle(0, -0.75, 0.22)), (False, _circle(0, -0.75, 0.1)),
                       *_adds(_rect(-0.08, -0.55, 0.08, 0.85), _rect(-0.45, -0.45, 0.45, -0.32)),
                       (True, _circle(0, 0.2, 0.8, 0.7, 0, 180)), (False, _circle(0, 0.2, 0.62, 0.52, 0, 180)),
                       (True, _rect(-0.08, 0.2, 0.08, 0.85))],
    "boat": lambda: _adds([(-1, 0.35), (1, 0.35), (0.65, 0.8), (-0.65, 0.8)], _rect(-0.04, -0.9, 0.04, 0.35),
                          [(0.1, -0.85), (0.1, 0.25), (0.75, 0.25)], [(-0.1, -0.6), (-0.1, 0.25), (-0.6, 0.25)]),
    "car": lambda: _adds(_rect(-1, -0.05, 1, 0.45), [(-0.55, -0.05), (-0.3, -0.5), (0.35, -0.5), (0.6, -0.05)],
                         _circle(-0.55, 0.5, 0.26), _circle(0.55, 0.5, 0.26)),
    "kite": lambda: _adds([(0, -1), (0.6, -0.3), (0, 0.6), (-0.6, -0.3)], _rect(-0.03, 0.6, 0.03, 1),
                          [(-0.15, 0.75), (0, 0.7), (0, 0.8)], [(0.15, 0.9), (0, 0.85), (0, 0.95)]),
    "leaf": _leaf,
    "crown": lambda: _adds([(-0.9, 0.6), (-0.9, -0.5), (-0.45, 0.05), (0, -0.75), (0.45, 0.05), (0.9, -0.5), (0.9, 0.6)]),
    "drop": lambda: _adds(_circle(0, 0.3, 0.6), [(0, -1), (0.56, 0.1), (-0.56, 0.1)]),
    "egg": lambda: _adds(_circle(0, 0.05, 0.62, 0.9)),
    "flag": lambda: _adds(_rect(-0.85, -0.95, -0.7, 1), _rect(-0.7, -0.9, 0.85, 0.1)),
    "hammer": lambda: _adds(_rect(-0.1, -0.35, 0.1, 1), _rect(-0.75, -0.85, 0.75, -0.35)),
    "hat": lambda: _adds(_rect(-1, 0.3, 1, 0.5), _rect(-0.55, -0.6, 0.55, 0.3)),
    "ladder": lambda: _adds(_rect(-0.62, -1, -0.45, 1), _rect(0.45, -1, 0.62, 1),
                            *(_rect(-0.45, y, 0.45, y + 0.13) for y in (-0.75, -0.3, 0.15, 0.6))),
    "lamp": lambda: _adds([(-0.35, -0.9), (0.35, -0.9), (0.75, -0.2), (-0.75, -0.2)], _rect(-0.07, -0.2, 0.07, 0.75),
                          _rect(-0.5, 0.75, 0.5, 0.95)),
    "lock": lambda: [(True, _circle(0, -0.3, 0.52)), (False, _circle(0, -0.3, 0.32)), (True, _rect(-0.7, -0.2, 0.7, 0.95)),
                     (False, _circle(0, 0.3, 0.13))],
    "apple": lambda: _adds(_circle(-0.3, 0.15, 0.6), _circle(0.3, 0.15, 0.6), _rect(-0.05, -0.85, 0.07, -0.35),
                           _circle(0.3, -0.65, 0.25, 0.12)),
    "rocket": lambda: [*_adds(_rect(-0.3, -0.4, 0.3, 0.6), [(-0.3, -0.4), (0, -1), (0.3, -0.4)],
                              [(-0.3, 0.1), (-0.7, 0.85), (-0.3, 0.6)], [(0.3, 0.1), (0.7, 0.85), (0.3, 0.6)]),
                       (False, _circle(0, -0.1, 0.13))],
    "shield": lambda: _adds([(-0.8, -0.85), (0.8, -0.85), (0.8, 0.05), (0, 1), (-0.8, 0.05)]),
    "sword": lambda: _adds([(-0.1, 0.3), (-0.1, -0.8), (0, -1), (0.1, -0.8), (0.1, 0.3)], _rect(-0.45, 0.3, 0.45, 0.42),
                           _rect(-0.07, 0.42, 0.07, 0.85), _circle(0, 0.9, 0.1)),
    "table": lambda: _adds(_rect(-1, -0.35, 1, -0.15), _rect(-0.9, -0.15, -0.75, 0.8), _rect(0.75, -0.15, 0.9, 0.8)),
    "tent": lambda: [(True, [(0, -0.9), (1, 0.8), (-1, 0.8)]), (False, [(0, -0.1), (0.3, 0.8), (-0.3, 0.8)])],
    "trophy": lambda: [(True, _circle(-0.65, -0.5, 0.28)), (False, _circle(-0.65, -0.5, 0.14)),
                       (True, _circle(0.65, -0.5, 0.28)), (False, _circle(0.65, -0.5, 0.14)),
                       *_adds(_circle(0, -0.8, 0.65, 0.9, 0, 180), _rect(-0.08, 0.05, 0.08, 0.6), _rect(-0.45, 0.6, 0.45, 0.8))],
    "vase": lambda: _adds([(-0.3, -0.9), (0.3, -0.9), (0.25, -0.6), (0.65, -0.1), (0.55, 0.6), (0.3, 0.9), (-0.3, 0.9),
                           (-0.55, 0.6), (-0.65, -0.1), (-0.25, -0.6)]),
    "wheel": _wheel,
    "candle": lambda: _adds(_rect(-0.25, -0.3, 0.25, 1), _circle(0, -0.55, 0.17), [(0, -0.98), (0.16, -0.6), (-0.16, -0.6)]),
    "castle": lambda: [*_adds(_rect(-0.9, -0.2, 0.9, 0.9), _rect(-0.9, -0.75, -0.5, -0.2), _rect(0.5, -0.75, 0.9, -0.2),
                              _rect(-0.2, -0.5, 0.2, -0.2)), (False, _rect(-0.2, 0.4, 0.2, 0.9))],
    "chair": lambda: _adds(_rect(-0.55, 0.05, 0.55, 0.2), _rect(0.4, -0.95, 0.55, 0.05), _rect(-0.55, 0.2, -0.42, 0.95),
                           _rect(0.42, 0.2, 0.55, 0.95)),
    "door": lambda: [(True, _rect(-0.55, -1, 0.55, 1)), (False, _rect(-0.4, -0.85, 0.4, -0.1)), (False, _circle(0.3, 0.2, 0.09))],
    "window": lambda: [(True, _rect(-0.85, -0.85, 0.85, 0.85)),
                       *((False, _rect(x, y, x + 0.63, y + 0.63)) for x in (-0.7, 0.07) for y in (-0.7, 0.07))],
    "envelope": lambda: [(True, _rect(-0.95, -0.6, 0.95, 0.6)), (False, [(-0.85, -0.6), (0.85, -0.6), (0, 0.12)]),
                         (True, [(-0.7, -0.6), (0.7, -0.6), (0, -0.05)])],
    "fork": lambda: _adds(_rect(-0.07, -0.1, 0.07, 1), _rect(-0.4, -0.3, 0.4, -0.1),
                          *(_rect(x, -1, x + 0.12, -0.3) for x in (-0.4, -0.06, 0.28))),
    "gift": lambda: [*_adds(_rect(-0.8, -0.3, 0.8, 0.9), _rect(-0.9, -0.5, 0.9, -0.3)), (False, _rect(-0.08, -0.5, 0.08, 0.9)),
                     *_adds(_circle(-0.25, -0.7, 0.22), _circle(0.25, -0.7, 0.22))],
    "ghost": lambda: [*_adds(_circle(0, -0.2, 0.75, 0.75, 180, 360), _rect(-0.75, -0.2, 0.75, 0.75)),
                      *((False, [(x, 0.76), (x + 0.25, 0.45), (x + 0.5, 0.76)]) for x in (-0.75, -0.25, 0.25)),
                      (False, _circle(-0.28, -0.25, 0.12)), (False, _circle(0.28, -0.25, 0.12))],
    "hourglass": lambda: _adds([(-0.7, -1), (0.7, -1), (0.08, 0), (0.7, 1), (-0.7, 1), (-0.08, 0)]),
    "pencil": lambda: [*_adds(_rect(-0.95, -0.25, 0.45, 0.25), [(0.45, -0.25), (1, 0), (0.45, 0.25)]),
                       (False, _rect(-0.7, -0.25, -0.62, 0.25))],
    "snowman": lambda: _adds(_circle(0, 0.45, 0.5), _circle(0, -0.25, 0.35), _circle(0, -0.75, 0.25)),
    "mountain": lambda: _adds([(-1, 0.8), (-0.35, -0.5), (0, 0), (0.4, -0.85), (1, 0.8)]),
    "bone": lambda: _adds(_rect(-0.65, -0.15, 0.65, 0.15), *(_circle(x, y, 0.22) for x in (-0.7, 0.7) for y in (-0.2, 0.2))),
    "cactus": lambda: _adds(_rect(-0.2, -0.9, 0.2, 1), _rect(-0.7, -0.1, -0.2, 0.1), _rect(-0.7, -0.6, -0.5, -0.1),
                            _rect(0.2, 0.15, 0.7, 0.35), _rect(0.5, -0.4, 0.7, 0.35)),
    "carrot": lambda: _adds([(-0.3, -0.5), (0.3, -0.5), (0, 1)], [(-0.25, -0.5), (-0.45, -1), (-0.05, -0.5)],
                            [(-0.05, -0.5), (0.05, -1), (0.15, -0.5)], [(0.1, -0.5), (0.45, -0.95), (0.28, -0.5)]),
    "cherry": lambda: _adds(_circle(-0.45, 0.5, 0.35), _circle(0.45, 0.55, 0.35),
                            [(-0.45, 0.2), (0.05, -0.9), (0.13, -0.85), (-0.37, 0.2)],
                            [(0.45, 0.25), (0.05, -0.9), (0.13, -0.9), (0.53, 0.25)]),
    "dumbbell": lambda: _adds(_rect(-0.7, -0.08, 0.7, 0.08), _rect(-0.88, -0.5, -0.55, 0.5), _rect(0.55, -0.5, 0.88, 0.5)),
    "lollipop": lambda: _adds(_circle(0, -0.4, 0.55), _rect(-0.05, 0.15, 0.05, 1)),
    "shirt": lambda: _adds([(-0.35, -0.9), (-1, -0.5), (-0.8, -0.1), (-0.55, -0.3), (-0.55, 0.9), (0.55, 0.9), (0.55, -0.3),
                            (0.8, -0.1), (1, -0.5), (0.35, -0.9), (0, -0.65)]),
    "tie": lambda: _adds([(-0.2, -1), (0.2, -1), (0.12, -0.7), (-0.12, -0.7)],
                         [(-0.12, -0.7), (0.12, -0.7), (0.3, 0.6), (0, 1), (-0.3, 0.6)]),
    "plane": lambda: _adds(_rect(-0.1, -1, 0.1, 0.85), [(-1, 0.1), (0, -0.35), (1, 0.1), (1, 0.25), (-1, 0.25)],
                           [(-0.4, 0.85), (0, 0.6), (0.4, 0.85), (0.4, 0.95), (-0.4, 0.95)]),
    "clock": lambda: [(True, _circle(0, 0, 0.95)), (False, _circle(0, 0, 0.8)),
                      *_adds(_rect(-0.05, -0.6, 0.05, 0.05), _rect(-0.05, -0.05, 0.45, 0.05), _circle(0, 0, 0.09))],
    "spoon": lambda: _adds(_circle(0, -0.55, 0.35, 0.45), _rect(-0.06, -0.1, 0.06, 1)),
    "bucket": lambda: [*_adds([(-0.7, -0.5), (0.7, -0.5), (0.5, 0.9), (-0.5, 0.9)], _circle(0, -0.5, 0.7, 0.6, 180, 360)),
                       (False, _circle(0, -0.5, 0.56, 0.46, 180, 360))],
    "glasses": lambda: [(True, _circle(-0.5, 0, 0.4)), (False, _circle(-0.5, 0, 0.26)), (True, _circle(0.5, 0, 0.4)),
                        (False, _circle(0.5, 0, 0.26)), (True, _rect(-0.14, -0.08, 0.14, 0.02))],
    "pear": lambda: _adds(_circle(0, 0.35, 0.6), _circle(0, -0.3, 0.36), _rect(-0.04, -0.88, 0.06, -0.55)),
    "butterfly": lambda: _adds(_circle(-0.5, -0.35, 0.45, 0.4), _circle(0.5, -0.35, 0.45, 0.4), _circle(-0.4, 0.4, 0.35, 0.3),
                               _circle(0.4, 0.4, 0.35, 0.3), _rect(-0.08, -0.7, 0.08, 0.8)),
    "sock": lambda: _adds([(-0.3, -1), (0.3, -1), (0.3, 0.3), (0.9, 0.5), (0.9, 0.95), (-0.1, 0.95), (-0.3, 0.6)]),
    "comb": lambda: _adds(_rect(-0.9, -0.6, 0.9, -0.25), *(_rect(x, -0.25, x + 0.1, 0.7) for x in np.arange(-0.88, 0.85, 0.2))),
    "axe": lambda: _adds(_rect(-0.07, -0.9, 0.07, 1), _circle(0.05, -0.55, 0.75, 0.5, -90, 90)),
}

# 12 hue bins of 30 degrees; the site uses even bins, held-out images odd ones.
HUE_NAMES = ("red", "orange", "yellow", "lime", "green", "teal", "cyan", "azure", "blue", "violet", "magenta", "pink")
FILLS = ("solid", "stripes", "dots", "gradient")
BACKGROUNDS = ("plain", "gradient", "stripes", "noise", "checker")


@dataclass(frozen=True)
class DrawSpec:
    """Everything that decides one drawing."""

    concept: str
    size: int
    hue_bin: int
    fill: str
    background: str
    scale: float
    angle: float
    dx: float
    dy: float
    seed: int

    @property
    def colour_name(self) -> str:
        """The object's colour word."""
        return HUE_NAMES[self.hue_bin]


def _rgb(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32) * 255


def _texture(kind: str, size: int, c1: np.ndarray, c2: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An (H, W, 3) float texture of two colours."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind in ("solid", "plain"):
        t = np.zeros_like(xx)
    elif kind == "gradient":
        t = (xx + yy) / 2
    elif kind == "stripes":
        period = rng.uniform(0.08, 0.2)
        t = ((xx * math.cos(rng.uniform(0, math.pi)) + yy) / period % 1.0 > 0.5).astype(np.float32)
    elif kind == "dots":
        period = rng.uniform(0.1, 0.2)
        t = (((xx / period % 1 - 0.5) ** 2 + (yy / period % 1 - 0.5) ** 2) < 0.06).astype(np.float32)
    elif kind == "checker":
        period = rng.uniform(0.1, 0.25)
        t = ((np.floor(xx / period) + np.floor(yy / period)) % 2).astype(np.float32)
    elif kind == "noise":
        t = rng.random((size, size), dtype=np.float32) * 0.6
    else:
        raise ValueError(f"unknown texture {kind!r}")
    return c1[None, None, :] * (1 - t[..., None]) + c2[None, None, :] * t[..., None]


def render(spec: DrawSpec) -> Image.Image:
    """Draw ``spec`` as an RGB image."""
    rng = np.random.default_rng(spec.seed)
    size = spec.size
    hue = (spec.hue_bin * 30 + rng.uniform(-8, 8)) / 360
    obj1 = _rgb(hue, rng.uniform(0.65, 1.0), rng.uniform(0.7, 1.0))
    obj2 = _rgb(hue, rng.uniform(0.3, 0.6), rng.uniform(0.45, 0.7))
    bg_h = rng.random()
    light = rng.random() < 0.5
    bg1 = _rgb(bg_h, rng.uniform(0.0, 0.25), 0.92 if light else 0.18)
    bg2 = _rgb(bg_h + 0.1, rng.uniform(0.0, 0.3), 0.8 if light else 0.3)
    canvas = _texture(spec.background, size, bg1, bg2, rng)
    fill = _texture(spec.fill, size, obj1, obj2, rng)
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    cos, sin = math.cos(math.radians(spec.angle)), math.sin(math.radians(spec.angle))
    half = size / 2
    for add, poly in SHAPES[spec.concept]():
        pts = [(half + half * (spec.dx + spec.scale * (x * cos - y * sin)),
                half + half * (spec.dy + spec.scale * (x * sin + y * cos))) for x, y in poly]
        draw.polygon(pts, fill=255 if add else 0)
    alpha = np.asarray(mask, dtype=np.float32)[..., None] / 255
    out = canvas * (1 - alpha) + fill * alpha
    return Image.fromarray(out.clip(0, 255).astype(np.uint8), "RGB")


def encode(image: Image.Image, fmt: str, quality: int = 85) -> bytes:
    """Encode as JPEG, PNG or WebP with no metadata, deterministically."""
    buf = io.BytesIO()
    if fmt == "jpg":
        image.save(buf, "JPEG", quality=quality)
    elif fmt == "png":
        image.save(buf, "PNG", optimize=False, compress_level=6)
    elif fmt == "webp":
        image.save(buf, "WEBP", quality=quality, method=2)
    else:
        raise ValueError(f"unknown image format {fmt!r}")
    return buf.getvalue()


def random_spec(concept: str, rng: np.random.Generator, heldout: bool = False, size: int | None = None) -> DrawSpec:
    """Draw parameters; held-out specs use hue bins the site never uses."""
    sizes = (64, 80, 96, 128, 160, 192, 256, 320, 512)
    weights = np.array([6, 5, 6, 6, 3, 2, 2, 1, 1], dtype=float)
    return DrawSpec(
        concept=concept,
        size=size or int(rng.choice(sizes, p=weights / weights.sum())),
        hue_bin=int(rng.integers(0, 6)) * 2 + (1 if heldout else 0),
        fill=str(rng.choice(FILLS)),
        background=str(rng.choice(BACKGROUNDS)),
        scale=float(rng.uniform(0.5, 0.85)),
        angle=float(rng.uniform(-25, 25)),
        dx=float(rng.uniform(-0.12, 0.12)),
        dy=float(rng.uniform(-0.12, 0.12)),
        seed=int(rng.integers(0, 2**31)),
    )
