"""Write the sample web: a messy static site, its query list, held-out images and prompts."""

from __future__ import annotations

import html
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from webclip.runfolder import atomic_write_json
from webclip.sampleweb.concepts import (
    CONCEPTS,
    HEAD_TO_TAIL,
    OTHER_LANGS,
    concept_names,
    concept_weights,
    translate,
)
from webclip.sampleweb.draw import DrawSpec, encode, random_spec, render

MIME = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
DATA_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
JUNK_ALTS = ("image", "IMG_{n}.jpg", "logo", "photo", "spacer", "DSC0{n}.JPG", "!!!!!!!!!!", "https://example.com/pic{n}.jpg", "picture", "thumbnail")
TEMPLATES = ["a photo of a {}.", "a drawing of a {}.", "a {} icon.", "a picture of the {}.", "a {} on a background.", "a close-up of a {}."]
BG_WORDS = {"plain": "plain", "gradient": "gradient", "stripes": "striped", "noise": "grainy", "checker": "checkered"}
FILL_WORDS = {"solid": "solid", "stripes": "striped", "dots": "dotted", "gradient": "shaded"}
EN_TEMPLATES = (
    "{art} {colour} {c}",
    "{C} on a {bg} background",
    "photo of {art} {colour} {c}",
    "{Art} {fill} {colour} {c} drawn by hand, shown on a {bg} background",
    "{c} icon in {colour}",
    "Close-up of the {colour} {c} from our new collection",
    "Buy the {colour} {c} poster today & save 20%",
    "Illustration: {art} {c} with a {fill} pattern",
)
OTHER_TEMPLATES = {
    "fr": ("Une image de {c} sur un fond coloré", "Le dessin {c} de notre nouvelle collection, fait à la main"),
    "de": ("Ein Bild von {c} auf einem farbigen Hintergrund", "Die Zeichnung {c} aus unserer neuen Sammlung, von Hand gemacht"),
    "es": ("Una imagen de {c} sobre un fondo de color", "El dibujo {c} de nuestra nueva colección, hecho a mano"),
    "it": ("Un'immagine di {c} su uno sfondo colorato", "Il disegno {c} della nostra nuova collezione, fatto a mano"),
    "pt": ("Uma imagem de {c} sobre um fundo colorido", "O desenho {c} da nossa nova coleção, feito à mão"),
}


@dataclass
class SampleWebConfig:
    """How big the sample web is; the seed fixes every byte of it."""

    seed: int = 0
    pages: int = 2000
    images: int = 3200
    concepts: int = 20
    heldout_per_concept: int = 20
    head_to_tail: float = HEAD_TO_TAIL  # the most frequent concept's share over the least frequent's
    sections: int = 20
    private_pages: int = 20
    slow_seconds: float = 3.0
    workers: int = 2

    def validate(self) -> None:
        """Reject sizes the generator cannot satisfy."""
        if not 2 <= self.concepts <= len(CONCEPTS):
            raise ValueError(f"concepts must be between 2 and {len(CONCEPTS)}")
        if self.head_to_tail < 1:
            raise ValueError("head_to_tail must be at least 1")
        if self.pages < self.sections or self.images < self.concepts or self.pages < 10:
            raise ValueError("need at least 10 pages, one page per section and one image per concept")


@dataclass
class Appearance:
    """One ``<img>`` on one page."""

    html: str


@dataclass
class Page:
    """An article page under construction."""

    path: str
    lang: str
    links: list[str] = field(default_factory=list)
    imgs: list[str] = field(default_factory=list)
    charset: str = "utf-8"
    header_charset: bool = False
    meta_robots: str | None = None
    base: str | None = None


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def english_alt(spec: DrawSpec, rng: np.random.Generator) -> str:
    """An English alt text naming the concept and, mostly, its colour."""
    t = EN_TEMPLATES[int(rng.integers(len(EN_TEMPLATES)))]
    colour = spec.colour_name
    first = colour if t.startswith("{art} {colour}") or "{art} {colour}" in t else spec.concept
    art = _article(first) if "{art} {colour}" in t else _article(spec.concept)
    if "{Art} {fill}" in t:
        art = _article(FILL_WORDS[spec.fill])
    return t.format(art=art, Art=art.capitalize(), colour=colour, c=spec.concept, C=spec.concept.capitalize(),
                    bg=BG_WORDS[spec.background], fill=FILL_WORDS[spec.fill])


def alt_for(spec: DrawSpec, lang: str, rng: np.random.Generator) -> str:
    """An alt text in ``lang``."""
    if lang == "en":
        return english_alt(spec, rng)
    options = OTHER_TEMPLATES[lang]
    return options[int(rng.integers(len(options)))].format(c=translate(spec.concept, lang))


def _render_one(args: tuple[DrawSpec, str]) -> bytes:
    spec, fmt = args
    return encode(render(spec), fmt)


def _page_html(page: Page, title: str) -> bytes:
    """Serialise one page in its charset."""
    meta = f'<meta charset="{page.charset}">' if not page.header_charset else ""
    robots = f'<meta name="robots" content="{page.meta_robots}">' if page.meta_robots else ""
    base = f'<base href="{page.base}">' if page.base else ""
    links = "\n".join(f'<li><a href="{h}">{h.rsplit("/", 1)[-1]}</a></li>' for h in page.links)
    body = "\n".join(page.imgs)
    doc = (f'<!DOCTYPE html>\n<html lang="{page.lang}">\n<head>{meta}<title>{html.escape(title)}</title>{robots}{base}</head>\n'
           f'<body>\n<header><a href="/index.html"><img src="/static/logo.png" alt="logo" width="120" height="40"></a></header>\n'
           f"<main>\n{body}\n</main>\n<nav><ul>\n{links}\n</ul></nav>\n</body>\n</html>\n")
    return doc.encode(page.charset, errors="xmlcharrefreplace")


class SiteBuilder:
    """Builds the site in memory-light steps; every choice comes from one seeded generator."""

    def __init__(self, cfg: SampleWebConfig, out: Path):
        self.cfg = cfg
        self.out = out
        self.site = out / "site"
        self.rng = np.random.default_rng(cfg.seed)
        self.names = concept_names(cfg.concepts)
        self.headers: dict[str, dict[str, str]] = {}
        self.counts: Counter = Counter()

    def images(self) -> list[tuple[str, DrawSpec]]:
        """Draw parameters of every site image: (path, spec), concepts long-tailed."""
        w = np.array(concept_weights(len(self.names), self.cfg.head_to_tail))
        picks = self.rng.choice(len(self.names), size=self.cfg.images, p=w / w.sum())
        picks[: len(self.names)] = np.arange(len(self.names))  # every concept appears at least once
        formats = ("jpg", "jpg", "jpg", "png", "webp")
        out = []
        for i, ci in enumerate(picks):
            spec = random_spec(self.names[int(ci)], self.rng)
            fmt = formats[int(self.rng.integers(len(formats)))]
            out.append((f"/img/{i:05d}.{fmt}", spec))
        return out

    def write_images(self, specs: list[tuple[str, DrawSpec]]) -> None:
        """Render and write the site images, in parallel but deterministically."""
        jobs = [(spec, path.rsplit(".", 1)[1]) for path, spec in specs]
        with Pool(self.cfg.workers) as pool:
            for (path, _), data in zip(specs, pool.imap(_render_one, jobs, chunksize=32), strict=True):
                self._write(path, data)

    def _write(self, path: str, data: bytes) -> None:
        p = self.site / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

    def img_tag(self, path: str, spec: DrawSpec, alt: str | None, page: Page) -> str:
        """One ``<img>`` with a randomly chosen real-web quirk."""
        r = self.rng.random()
        esc = "" if alt is None else f' alt="{html.escape(alt, quote=True)}"'
        size_attr = f' width="{spec.size}" height="{spec.size}"' if self.rng.random() < 0.5 else ""
        alias = path.replace("/img/", "/cdn/")
        if r < 0.08:
            self.counts["lazy_data_src"] += 1
            return f'<img src="{DATA_GIF}" data-src="{path}"{esc}{size_attr}>'
        if r < 0.16:
            self.counts["srcset"] += 1
            return f'<img src="{path}" srcset="{path} {spec.size // 2}w, {alias} {spec.size}w"{esc}{size_attr}>'
        if r < 0.20:
            self.counts["picture"] += 1
            return f'<picture><source srcset="{alias}" type="{MIME[path.rsplit(".", 1)[1]]}"><img src="{path}"{esc}></picture>'
        if r < 0.24:
            self.counts["alias_url"] += 1
            return f'<img src="{alias}"{esc}{size_attr}>'
        if r < 0.27:
            self.counts["redirect_url"] += 1
            return f'<img src="{path.replace("/img/", "/r/")}"{esc}>'
        if page.base:
            self.counts["relative_under_base"] += 1
            return f'<img src="{path.removeprefix(page.base)}"{esc}{size_attr}>'
        return f'<img src="{path}"{esc}{size_attr}>'

    def alt_choice(self, spec: DrawSpec, primary: str, lang: str) -> str | None:
        """Mostly the image's own alt; sometimes another, junk, empty, missing, long or with entities."""
        r = self.rng.random()
        if r < 0.70:
            return primary
        if r < 0.80:
            return alt_for(spec, lang, self.rng)
        if r < 0.88:
            self.counts["junk_alt"] += 1
            return JUNK_ALTS[int(self.rng.integers(len(JUNK_ALTS)))].format(n=int(self.rng.integers(1000, 9999)))
        if r < 0.92:
            self.counts["missing_alt"] += 1
            return None
        if r < 0.95:
            self.counts["empty_alt"] += 1
            return "" if self.rng.random() < 0.5 else "   "
        if r < 0.97:
            self.counts["long_alt"] += 1
            return " ".join([primary] + [english_alt(spec, self.rng) for _ in range(12)])
        self.counts["entity_alt"] += 1
        return primary + " — Tom's \"best\" & <brightest>"

    def pages(self, specs: list[tuple[str, DrawSpec]]) -> list[Page]:
        """Lay the images out over the article pages, with links between pages."""
        cfg, rng = self.cfg, self.rng
        pages = []
        for i in range(cfg.pages):
            s = i % cfg.sections
            lang = "en" if rng.random() < 0.8 else OTHER_LANGS[int(rng.integers(len(OTHER_LANGS)))]
            page = Page(path=f"/s/{s:02d}/{i:05d}.html", lang=lang)
            if rng.random() < 0.04:
                page.charset = "windows-1252"
                self.counts["page_windows_1252"] += 1
            elif rng.random() < 0.02:
                page.charset, page.header_charset = "iso-8859-1", True
                self.headers[page.path] = {"Content-Type": "text/html; charset=iso-8859-1"}
                self.counts["page_header_charset"] += 1
            if rng.random() < 0.05:
                page.base = "/img/"
            pages.append(page)
        # Every image once in order, then popular images again (a Zipf over image index).
        slots = [i for i in range(len(specs))]
        extra = int(cfg.pages * 3.5) - len(slots)
        zipf = 1 / np.arange(1, len(specs) + 1) ** 0.8
        slots += list(rng.choice(len(specs), size=max(extra, 0), p=zipf / zipf.sum()))
        order = rng.permutation(len(slots))
        primary = {}
        for k, idx in enumerate(order):
            img = int(slots[int(idx)])
            page = pages[k % len(pages)]
            path, spec = specs[img]
            lang = page.lang if rng.random() < 0.9 else "en"
            key = (img, lang)
            if key not in primary:
                primary[key] = alt_for(spec, lang, rng)
            page.imgs.append(self.img_tag(path, spec, self.alt_choice(spec, primary[key], lang), page))
        for page in pages:
            section = int(page.path.split("/")[2])
            others = rng.choice(len(pages), size=4, replace=False)
            page.links = [f"/s/{section:02d}/index.html"] + [pages[int(o)].path for o in others]
        self._quirks(pages)
        return pages

    def _quirks(self, pages: list[Page]) -> None:
        """Broken images, 404s, data URIs, slow and redirected URLs, opt-outs, tracking pixels."""
        rng = self.rng
        for n in range(max(3, len(pages) // 100)):
            p = pages[int(rng.integers(len(pages)))]
            kind = n % 6
            if kind == 0:
                self._write(f"/img/broken-{n}.jpg", b"\xff\xd8\xff\xe0 this is not really a jpeg" * 3)
                p.imgs.append(f'<img src="/img/broken-{n}.jpg" alt="a broken picture of a star">')
                self.counts["broken_image"] += 1
            elif kind == 1:
                p.imgs.append(f'<img src="/img/missing-{n}.jpg" alt="a missing picture of a heart">')
                self.counts["missing_image_404"] += 1
            elif kind == 2:
                p.imgs.append(f'<img src="{DATA_GIF}" alt="an inline picture of a moon">')
                self.counts["data_uri"] += 1
            elif kind == 3:
                p.imgs.append('<img src="/slow/img/00000.jpg" alt="a slow picture of a star">')
                self.counts["slow_image"] += 1
            elif kind == 4:
                p.imgs.append('<img src="/static/pixel.gif" width="1" height="1" alt="tracking">')
                self.counts["tracking_pixel"] += 1
            else:
                p.imgs.append(f'<img src="/page-not-image-{n}.jpg" alt="a fish that is really a web page">')
                self.headers[f"/page-not-image-{n}.jpg"] = {"Content-Type": "text/html; charset=utf-8"}
                self._write(f"/page-not-image-{n}.jpg", b"<html><body>not an image</body></html>")
                self.counts["html_as_image"] += 1
        for p in rng.choice(len(pages), size=max(2, len(pages) // 100), replace=False):
            pages[int(p)].meta_robots = "noimageai"
            self.counts["page_noimageai"] += 1
        p = pages[int(rng.integers(len(pages)))]
        self.headers[p.path] = {**self.headers.get(p.path, {}), "X-Robots-Tag": "noai"}
        self.counts["page_x_robots_noai"] += 1

    def write_site(self, specs: list[tuple[str, DrawSpec]], pages: list[Page]) -> None:
        """Write pages, section indexes, the index, robots.txt, private pages and static files."""
        cfg = self.cfg
        for page in pages:
            self._write(page.path, _page_html(page, f"Gallery {page.path}"))
        sections = sorted({p.path.rsplit("/", 1)[0] for p in pages})
        for s in sections:
            members = [p.path for p in pages if p.path.startswith(s + "/")]
            idx = Page(path=f"{s}/index.html", lang="en", links=["/index.html"] + members)
            self._write(idx.path, _page_html(idx, f"Section {s}"))
        private = []
        for i in range(cfg.private_pages):
            path, spec = specs[int(self.rng.integers(len(specs)))]
            pg = Page(path=f"/private/{i:03d}.html", lang="en", imgs=[f'<img src="{path}" alt="private {spec.concept} photo">'])
            self._write(pg.path, _page_html(pg, "Private"))
            private.append(pg.path)
        index = Page(path="/index.html", lang="en",
                     links=[f"{s}/index.html" for s in sections] + ["/private/index.html", "/old-index.html", "/slow/s/00/index.html", "/loop/a.html", "/nowhere.html"],
                     imgs=['<img src="/img/00000.jpg" alt="Welcome to the sample gallery of drawn shapes">'])
        self._write("/index.html", _page_html(index, "Sample web"))
        self._write("/private/index.html", _page_html(Page(path="/private/index.html", lang="en", links=private), "Private"))
        self._write("/robots.txt", b"User-agent: *\nDisallow: /private/\nSitemap: /sitemap.xml\n")
        # A page no link reaches: only the sitemap lists it.
        path, spec = specs[int(self.rng.integers(len(specs)))]
        orphan = Page(path="/s/orphan.html", lang="en", imgs=[f'<img src="{path}" alt="{english_alt(spec, self.rng)}">'])
        self._write(orphan.path, _page_html(orphan, "Only in the sitemap"))
        locs = ["/index.html", *(f"{s}/index.html" for s in sections), orphan.path]
        xml = "".join(f"<url><loc>{loc}</loc></url>" for loc in locs)
        self._write("/sitemap.xml", f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{xml}</urlset>\n'.encode())
        logo = render(random_spec("star", np.random.default_rng(cfg.seed + 1), size=64))
        self._write("/static/logo.png", encode(logo, "png"))
        self._write("/static/pixel.gif", bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"))
        routes = {
            "alias": {"/cdn/": "/img/"},
            "redirect": {"/r/": "/img/", "/old-index.html": "/index.html", "/loop/a.html": "/loop/b.html", "/loop/b.html": "/loop/a.html"},
            "slow": {"prefix": "/slow/", "seconds": cfg.slow_seconds},
        }
        atomic_write_json(self.site / "_routes.json", routes)
        atomic_write_json(self.site / "_headers.json", self.headers)


def write_heldout(cfg: SampleWebConfig, out: Path, names: list[str]) -> list[tuple[str, DrawSpec]]:
    """Held-out images per concept, outside the served root, from hue bins the site never uses."""
    rng = np.random.default_rng(cfg.seed + 10_000)
    specs = []
    for name in names:
        for k in range(cfg.heldout_per_concept):
            specs.append((f"heldout/{name}/{k:03d}.jpg", random_spec(name, rng, heldout=True, size=128)))
    with Pool(cfg.workers) as pool:
        for (path, _), data in zip(specs, pool.imap(_render_one, [(s, "jpg") for _, s in specs], chunksize=16), strict=True):
            p = out / path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
    return specs


def leak_heldout(builder: SiteBuilder, out: Path, heldout: list[tuple[str, DrawSpec]], pages: list[Page], n: int = 3) -> None:
    """Copy a few held-out images onto the site: the contamination decontamination must catch."""
    for k in range(min(n, len(heldout))):
        src, spec = heldout[k * max(1, len(heldout) // n)]
        path = f"/img/leak-{k}.jpg"
        builder._write(path, (out / src).read_bytes())
        pages[k].imgs.append(f'<img src="{path}" alt="{english_alt(spec, builder.rng)}">')
        builder.counts["heldout_leak"] += 1


def generate(cfg: SampleWebConfig, out: str | Path) -> dict:
    """Write the whole sample web under ``out`` and return its summary."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    builder = SiteBuilder(cfg, out)
    specs = builder.images()
    builder.write_images(specs)
    heldout = write_heldout(cfg, out, builder.names)
    pages = builder.pages(specs)
    leak_heldout(builder, out, heldout, pages)
    builder.write_site(specs, pages)
    per_concept = Counter(spec.concept for _, spec in specs)
    atomic_write_json(out / "concepts.json", builder.names)
    atomic_write_json(out / "classnames.json", builder.names)
    atomic_write_json(out / "templates.json", TEMPLATES)
    summary = {
        "config": cfg.__dict__,
        "pages": len(pages),
        "images": len(specs),
        "heldout_images": len(heldout),
        "images_per_concept": {n: per_concept[n] for n in builder.names},
        "quirks": dict(sorted(builder.counts.items())),
    }
    atomic_write_json(out / "sampleweb.json", summary)
    return summary


def iter_site_files(out: str | Path) -> Iterator[Path]:
    """Every file of the served root, sorted (for hashing and size checks)."""
    yield from sorted(p for p in (Path(out) / "site").rglob("*") if p.is_file())
