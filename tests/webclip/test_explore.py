"""``webclip explore`` over a real small run: JSON endpoints checked against the run's own files, read with other
readers (pyarrow, tarfile), and the page driven in Debian's headless Chromium through selenium."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from tests.conftest import free_port, run_webclip
from webclip.config import build
from webclip.pipelines.config import CurateConfig
from webclip.pipelines.filters import filter_reason
from webclip.pipelines.normalise import normalise_caption

pytestmark = pytest.mark.slow
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
STAGES = ("candidates", "curated", "shards", "train", "eval")


@pytest.fixture(scope="module")
def run(request: pytest.FixtureRequest) -> Path:
    """Every stage on the test preset's small sample web (the session's ``preset_run``);
    ``WEBCLIP_EXPLORE_RUN=DIR`` reuses a run built that way instead (the tests only read it)."""
    if os.environ.get("WEBCLIP_EXPLORE_RUN"):
        return Path(os.environ["WEBCLIP_EXPLORE_RUN"])
    return request.getfixturevalue("preset_run")


@pytest.fixture(scope="module")
def server(run: Path) -> Iterator[str]:
    """``webclip explore`` in its own process on a free loopback port; yields the base URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "webclip.cli", "explore", "--run", str(run), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    assert "serving" in line, line
    yield f"http://127.0.0.1:{port}/"
    proc.terminate()
    proc.wait(timeout=10)


def get(base: str, path: str, headers: dict[str, str] | None = None) -> Any:
    with urllib.request.urlopen(urllib.request.Request(base + path.lstrip("/"), headers=headers or {}), timeout=30) as r:
        return json.loads(r.read()) if "json" in r.headers["Content-Type"] else r.read()


def status_of(base: str, path: str, method: str = "GET", headers: dict[str, str] | None = None,
              data: bytes | None = None) -> int:
    req = urllib.request.Request(base + path.lstrip("/"), method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def stats(run: Path, stage: str) -> dict[str, Any]:
    return json.loads((run / stage / "stats.json").read_text())


def samples_table(run: Path) -> list[dict[str, Any]]:
    """The final samples, read by pyarrow.dataset from the folder as it is."""
    return ds.dataset(run / "shards" / "samples", format="parquet").to_table().to_pylist()


def canonical_sha(example: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(example, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def test_funnel_matches_every_stage_stats(run: Path, server: str) -> None:
    funnel = get(server, "/api/funnel")
    assert [s["stage"] for s in funnel["stages"]] == list(STAGES)
    for block in funnel["stages"]:
        st = stats(run, block["stage"])
        assert block["done"] and (block["n_in"], block["kept"]) == (st["in"], st["kept"])
        assert {d["reason"]: d["n"] for d in block["dropped"]} == st["dropped"]
        assert block["n_in"] == block["kept"] + sum(d["n"] for d in block["dropped"])
    curated = {d["reason"]: d for d in funnel["stages"][1]["dropped"]}
    assert curated and all(d["examples"] == min(5, d["n"]) for d in curated.values())


def test_curate_keeps_the_five_smallest_drops_per_filter_reason(run: Path, server: str) -> None:
    cfg_dict = json.loads((run / "curated" / "config.json").read_text())["config"]
    cfg = build(CurateConfig, cfg_dict)
    dropped: dict[str, list[dict[str, Any]]] = {}
    for row in ds.dataset(run / "candidates" / "data", format="parquet").to_table().to_pylist():
        row = {**row, "caption": normalise_caption(row["alt"])}
        reason = filter_reason(row, cfg)
        if reason:
            dropped.setdefault(reason, []).append(row)
    st = stats(run, "curated")
    assert dropped and all(len(rows) == st["dropped"][r] for r, rows in dropped.items())
    for reason, rows in dropped.items():
        shown = get(server, f"/api/drops?stage=curated&reason={reason}")["examples"]
        expected = sorted(rows, key=canonical_sha)[:5]
        assert [e["uid"] for e in shown] == [e["uid"] for e in expected], reason
    over_cap = get(server, "/api/drops?stage=curated&reason=balance/over_cap")["examples"]
    pool = {r["uid"]: r for r in ds.dataset(run / "curated" / "pool", format="parquet").to_table().to_pylist()}
    assert over_cap and all(pool[e["uid"]]["kept"] is False and not e["in_final"] for e in over_cap)
    for e in get(server, "/api/drops?stage=curated&reason=dedupe/duplicate_uid")["examples"]:
        assert e["kept_instead"]["uid"] == e["uid"] and e["kept_instead"]["page_url"] <= e["page_url"]


def test_crawl_keeps_examples_of_dropped_pages(run: Path, server: str) -> None:
    from urllib.robotparser import RobotFileParser

    pages = stats(run, "candidates")["pages"]["dropped"]
    robots = RobotFileParser()
    robots.parse((run / "sampleweb" / "site" / "robots.txt").read_text().splitlines())
    assert pages
    for reason, n in pages.items():
        shown = get(server, f"/api/drops?stage=candidates&reason={reason}")
        assert shown["count"] == n and len(shown["examples"]) == min(5, n), reason
        for e in shown["examples"]:
            assert e["page_url"].startswith("http://127.0.0.1:")
            if reason == "crawl/robots_disallowed":
                assert not robots.can_fetch("webclip", e["page_url"]), e["page_url"]


def test_crawl_keeps_a_page_as_the_example_of_each_image_drop_reason(run: Path, server: str) -> None:
    images = stats(run, "candidates")["dropped"]  # extract/<reason>: counted per image, shown by page
    assert images
    for reason, n in images.items():
        shown = get(server, f"/api/drops?stage=candidates&reason={reason}")
        assert shown["count"] == n and 1 <= len(shown["examples"]) <= min(5, n), reason
        for e in shown["examples"]:
            assert e["page_url"].startswith("http://127.0.0.1:") and isinstance(e["depth"], int)


def test_entries_mark_head_and_tail_by_the_balancing_cap(run: Path, server: str) -> None:
    data = get(server, "/api/entries")
    counts = ds.dataset(run / "curated" / "query_counts", format="parquet").to_table().to_pylist()
    assert {r["entry_id"]: (r["count_before"], r["count_after"]) for r in data["rows"]} == \
        {r["entry_id"]: (r["count_before"], r["count_after"]) for r in counts}
    cap = stats(run, "curated")["balance_thresholds"]["*"]
    assert data["cap"] == cap
    assert all(r["group"] == ("head" if r["count_before"] > cap else "tail") for r in data["rows"])
    assert {r["group"] for r in data["rows"]} == {"head", "tail"}
    final = samples_table(run)
    assert all(r["final"] == sum(r["entry_id"] in s["entry_ids"] for s in final) for r in data["rows"])


def test_samples_by_entry_and_caption_search(run: Path, server: str) -> None:
    final = samples_table(run)
    entry = get(server, "/api/entries")["rows"][0]
    page = get(server, f"/api/samples?entry={entry['entry_id']}&limit=500")
    assert page["total"] == entry["final"] == len(page["rows"]) and all(entry["entry_id"] in r["entry_ids"] for r in page["rows"])
    word = final[0]["caption"].split()[-1]
    hits = get(server, f"/api/samples?q={urllib.request.quote(word.upper())}&limit=500")
    assert hits["total"] == sum(word.casefold() in s["caption"].casefold() for s in final) > 0
    assert get(server, "/api/samples?q=zzqx-nothing")["total"] == 0


def test_images_come_from_the_shard_tars(run: Path, server: str) -> None:
    final = samples_table(run)
    s = final[len(final) // 2]
    with tarfile.open(run / "shards" / "final" / s["shard"]) as tar:
        member = tar.extractfile(f"{s['uid']}.jpg")
        assert member is not None
        assert get(server, f"/image/{s['uid']}.jpg") == member.read()
    assert status_of(server, "/image/" + "0" * 64 + ".jpg") == 404
    assert status_of(server, "/image/../../etc/passwd.jpg") == 404


def test_duplicate_groups_are_recorded_and_shown(run: Path, server: str) -> None:
    data = get(server, "/api/duplicates")
    st = stats(run, "shards")
    n_dups = st["dropped"].get("dedupe/exact_duplicate", 0) + st["dropped"].get("dedupe/near_duplicate", 0)
    assert data["recorded"] and 0 < len(data["groups"]) <= 20
    members = [m for g in data["groups"] for m in g["members"]]
    assert all(m["reason"].startswith("dedupe/") and m["has_image"] and not m["in_final"] for m in members)
    if data["total_groups"] <= 20:  # every group recorded: their members are every duplicate dropped
        assert sum(g["size"] - 1 for g in data["groups"]) == n_dups


def test_evaluation_endpoint_reads_results_and_metrics(run: Path, server: str) -> None:
    data = get(server, "/api/eval")
    results = json.loads((run / "eval" / "results.json").read_text())["zero_shot"]
    classnames = json.loads((run / "sampleweb" / "classnames.json").read_text())
    assert [c["class"] for c in data["classes"]] == classnames
    assert {c["class"]: c["top1"] for c in data["classes"]} == results["per_class"]
    assert data["confusion"] == results["confusion"] and data["zero_shot"]["top1"] == results["top1"]
    lines = (run / "train" / "metrics.jsonl").read_text().splitlines()
    assert len(data["curve"]) == len(lines) > 0 and data["confusion_png"]
    assert get(server, "/files/confusion.png")[:8] == b"\x89PNG\r\n\x1a\n"


def test_takedown_export_removes_exactly_the_selection(run: Path, server: str, tmp_path: Path) -> None:
    final = samples_table(run)
    chosen = [final[0]["uid"], final[-1]["uid"]]
    body = json.dumps({"uids": chosen}).encode()
    req = urllib.request.Request(server + "api/takedown", data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert "attachment" in r.headers["Content-Disposition"]
        text = r.read().decode()
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (tmp_path / "takedown.txt").write_text(text)
    run_webclip("takedown", "--run", str(copy), "--urls", str(tmp_path / "takedown.txt"))
    after = {s["uid"] for s in samples_table(copy)}
    assert after == {s["uid"] for s in final} - set(chosen)
    bad = json.dumps({"uids": ["f" * 64]}).encode()
    assert status_of(server, "/api/takedown", "POST", {"Content-Type": "application/json"}, bad) == 400


def test_read_only_loopback_and_nothing_from_elsewhere(run: Path, server: str) -> None:
    import html5lib

    assert status_of(server, "/api/funnel", headers={"Host": "attacker.example"}) == 403
    assert status_of(server, "/api/funnel", "PUT", data=b"x") == 501
    assert status_of(server, "/api/nothing") == 404
    assert status_of(server, "/api/drops?stage=../etc&reason=x") == 400
    with urllib.request.urlopen(server, timeout=30) as r:
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
        doc = html5lib.parse(r.read(), namespaceHTMLElements=False)
    for el in doc.iter():
        for attr in ("src", "href"):
            assert "//" not in (el.get(attr) or ""), (el.tag, el.get(attr))


def chrome(download_dir: Path):
    """Debian's chromium, headless, resolving nothing but loopback; selenium downloads nothing."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                           "download.prompt_for_download": False})
    return webdriver.Chrome(options=opts, service=Service(executable_path=str(CHROMEDRIVER)))


def test_page_in_headless_chromium(run: Path, server: str, tmp_path: Path) -> None:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chrome(tmp_path)
    wait = WebDriverWait(driver, 20)
    try:
        driver.get(server)
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, 'tr.stage[data-stage="eval"]')))
        for stage in STAGES:
            st = stats(run, stage)
            row = driver.find_element(By.CSS_SELECTOR, f'tr.stage[data-stage="{stage}"]')
            assert row.find_element(By.CSS_SELECTOR, "td.in").text.replace(",", "") == str(st["in"])
            assert row.find_element(By.CSS_SELECTOR, "td.kept").text.replace(",", "") == str(st["kept"])
            for reason, n in st["dropped"].items():
                cell = driver.find_element(By.CSS_SELECTOR, f'tr.reason[data-stage="{stage}"][data-reason="{reason}"]:not([data-block]) td.n')
                assert cell.text.replace(",", "") == str(n)
        # One drop reason: its examples, in the order drop_examples.json keeps them.
        reason = max(stats(run, "curated")["dropped"].items(), key=lambda kv: kv[1])[0]
        driver.find_element(By.CSS_SELECTOR, f'tr.reason[data-stage="curated"][data-reason="{reason}"]:not([data-block])').click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "examples-reason"), reason))
        recorded = json.loads((run / "curated" / "drop_examples.json").read_text())["examples"][reason]
        shown = [e.get_attribute("data-uid") for e in driver.find_elements(By.CSS_SELECTOR, "#examples .example")]
        assert shown == [e["uid"] for e in recorded] and len(shown) == 5
        driver.save_screenshot(str(tmp_path / "explore-funnel.png"))
        for reason, n in stats(run, "candidates")["pages"]["dropped"].items():
            row = driver.find_element(By.CSS_SELECTOR, f'tr.reason[data-block="pages"][data-reason="{reason}"]')
            assert row.find_element(By.CSS_SELECTOR, "td.n").text.replace(",", "") == str(n)
        row.click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "examples-reason"), reason))
        assert len(driver.find_elements(By.CSS_SELECTOR, "#examples .example")) == min(5, n)
        # One entry: its final samples, images decoded from the shard tars.
        driver.find_element(By.CSS_SELECTOR, 'nav button[data-tab="entries"]').click()
        entry = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#entries tr.entry.head")))
        name, final = entry.find_element(By.CSS_SELECTOR, "td").text, int(entry.find_element(By.CSS_SELECTOR, "td.final").text)
        entry.click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "entry-name"), name))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#grid .card")) == min(60, final))
        wait.until(lambda d: d.execute_script(
            "return [...document.querySelectorAll('#grid img')].slice(0, 8).every(i => i.complete && i.naturalWidth > 0)"))
        # Select two samples and export the takedown list.
        cards = driver.find_elements(By.CSS_SELECTOR, "#grid .card")[:2]
        for card in cards:
            card.find_element(By.CSS_SELECTOR, "input.pick").click()
        assert driver.find_element(By.ID, "selection-count").text == "2"
        driver.save_screenshot(str(tmp_path / "explore-entry.png"))
        driver.find_element(By.ID, "export").click()
        wait.until(lambda d: d.find_element(By.ID, "takedown-text").get_attribute("value"))
        text = driver.find_element(By.ID, "takedown-text").get_attribute("value")
        urls = {s["uid"]: s["image_url"] for s in samples_table(run)}
        assert [ln for ln in text.splitlines() if not ln.startswith("#")] == \
            [urls[u] for u in sorted(c.get_attribute("data-uid") for c in cards)]
        wait.until(lambda d: (tmp_path / "takedown.txt").exists())
        assert (tmp_path / "takedown.txt").read_text() == text  # the download is the list shown
        # Duplicate groups side by side: the kept image first, then the members dropped for it.
        driver.find_element(By.CSS_SELECTOR, 'nav button[data-tab="dups"]').click()
        groups = json.loads((run / "shards" / "duplicate_groups.json").read_text())["groups"]
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#dups .group")) == len(groups))
        first = driver.find_elements(By.CSS_SELECTOR, "#dups .group")[0].find_elements(By.CSS_SELECTOR, ".card")
        assert [c.get_attribute("data-uid") for c in first] == [groups[0]["kept"], *(m["uid"] for m in groups[0]["members"])]
        wait.until(lambda d: d.execute_script(
            "return [...document.querySelectorAll('#dups img')].every(i => i.complete && i.naturalWidth > 0)"))
        driver.save_screenshot(str(tmp_path / "explore-duplicates.png"))
        # Evaluation: per-class rows, confusion matrix, curves.
        driver.find_element(By.CSS_SELECTOR, 'nav button[data-tab="eval"]').click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#curves svg.curve")))
        classes = json.loads((run / "sampleweb" / "classnames.json").read_text())
        assert len(driver.find_elements(By.CSS_SELECTOR, "#per-class tr")) == len(classes)
        assert len(driver.find_elements(By.CSS_SELECTOR, "#confusion tr")) == len(classes) + 1
        driver.save_screenshot(str(tmp_path / "explore-eval.png"))
        # Nothing was fetched from anywhere but the explorer.
        fetched = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert fetched and all(u.startswith(server) for u in fetched), fetched
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()
    assert (tmp_path / "explore-funnel.png").stat().st_size > 10_000
    print(f"screenshots: {tmp_path}/explore-*.png")


def test_cli_refuses_a_missing_or_old_run_in_one_line(tmp_path: Path) -> None:
    old = tmp_path / "old"
    (old / "candidates").mkdir(parents=True)
    (old / "candidates" / "part-00000.parquet").write_bytes(b"")
    for run, says in ((tmp_path / "absent", "run folder not found"), (old, "webclip < 0.2")):
        r = subprocess.run([sys.executable, "-m", "webclip.cli", "explore", "--run", str(run), "--port", "0"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_partial_run_is_shown_as_far_as_it_went(run: Path, tmp_path: Path) -> None:
    from webclip.explore.server import start

    part = tmp_path / "run"
    for stage in ("candidates", "curated"):
        shutil.copytree(run / stage, part / stage)
    server = start(part, 0)
    try:
        funnel = get(server.url, "/api/funnel")["stages"]
        assert [s["done"] for s in funnel] == [True, True, False, False, False]
        assert funnel[1]["kept"] == stats(run, "curated")["kept"] and "n_in" not in funnel[2]
        assert all(r["final"] == 0 for r in get(server.url, "/api/entries")["rows"])
        assert get(server.url, "/api/samples")["total"] == 0 and not get(server.url, "/api/duplicates")["recorded"]
        assert get(server.url, "/api/eval")["classes"] == [] and status_of(server.url, "/files/confusion.png") == 404
    finally:
        server.shutdown()
        server.server_close()
