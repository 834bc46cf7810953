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
