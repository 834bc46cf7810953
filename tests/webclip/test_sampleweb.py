"""The embedded sample web: deterministic, long-tailed, messy, served for real."""

from __future__ import annotations

import hashlib
import json

import requests

from tests.conftest import SMALL_WEB
from webclip.sampleweb.generate import generate, iter_site_files


def _digest(folder) -> str:
    h = hashlib.sha256()
    for p in iter_site_files(folder):
        h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def test_generation_is_deterministic(small_web, tmp_path) -> None:
    generate(SMALL_WEB, tmp_path / "again")
    assert _digest(small_web) == _digest(tmp_path / "again")


def test_long_tail_and_outputs(small_web) -> None:
    summary = json.loads((small_web / "sampleweb.json").read_text())
    concepts = json.loads((small_web / "concepts.json").read_text())
    counts = [summary["images_per_concept"][c] for c in concepts]  # concepts are listed head first
    assert counts[0] > 5 * counts[-1]
    assert sorted(concepts) == sorted(summary["images_per_concept"])
    assert not (small_web / "site" / "heldout").exists() and (small_web / "heldout").is_dir()
    quirks = summary["quirks"]
    for q in ("lazy_data_src", "srcset", "picture", "junk_alt", "page_noimageai", "data_uri", "broken_image"):
        assert quirks.get(q, 0) > 0, q


def test_server_routes(served_web) -> None:
    _, base, _, log = served_web
    assert "Disallow: /private/" in requests.get(base + "robots.txt", timeout=5).text
    r = requests.get(base + "r/00001.jpg", timeout=5, allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == "/img/00001.jpg"
    a = requests.get(base + "cdn/00001.jpg", timeout=5)
    b = requests.get(base + "img/00001.jpg", timeout=5)
    assert a.content == b.content and a.status_code == 200
    assert requests.get(base + "img/missing-1.jpg", timeout=5).status_code == 404
    assert requests.get(base + "_routes.json", timeout=5).status_code == 404
    assert len(log.read_text().splitlines()) >= 5


def test_every_concept_draws_its_own_shape() -> None:
    import numpy as np

    from webclip.sampleweb.concepts import CONCEPTS, OTHER_LANGS
    from webclip.sampleweb.draw import SHAPES, DrawSpec, render

    assert set(SHAPES) == set(CONCEPTS) and len(CONCEPTS) >= 60
    assert all(len(t) == len(OTHER_LANGS) and all(t) for t in CONCEPTS.values())
    masks = {}
    for name in CONCEPTS:  # white shape on black, upright and centred: the mask is the shape itself
        spec = DrawSpec(name, 48, 0, "solid", "plain", 0.8, 0.0, 0.0, 0.0, 1)
        img = np.asarray(render(spec).convert("L"), dtype=np.float32)
        masks[name] = img > img.mean()
        assert 0.04 < masks[name].mean() < 0.9, name
    names = list(masks)
    for i, a in enumerate(names):  # no two concepts draw (nearly) the same pixels
        for b in names[i + 1:]:
            assert (masks[a] ^ masks[b]).mean() > 0.02, (a, b)


def test_a_larger_world_with_a_steeper_tail(tmp_path) -> None:
    from webclip.sampleweb.concepts import concept_names
    from webclip.sampleweb.generate import SampleWebConfig

    cfg = SampleWebConfig(seed=3, pages=60, images=700, concepts=60, head_to_tail=300, heldout_per_concept=1,
                          sections=3, private_pages=1)
    summary = generate(cfg, tmp_path / "big")
    names = json.loads((tmp_path / "big" / "concepts.json").read_text())
    assert names == concept_names(60) and concept_names() == names[:20]  # the default world keeps its 20
    counts = [summary["images_per_concept"][c] for c in names]
    assert min(counts) >= 1 and counts[0] > 25 * counts[-1]  # head_to_tail 300, drawn
    assert len(list((tmp_path / "big" / "heldout").iterdir())) == 60
