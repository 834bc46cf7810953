"""Fetch one image politely, check it with Pillow, resize it with img2dataset's resizer."""

from __future__ import annotations

import functools
import importlib.util
import io
import itertools
import json
import logging
import os
import sys
import threading
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from PIL import Image

from webclip import denylist, storage
from webclip.dedupe.images import image_sha256, phash_hex
from webclip.dedupe.urls import image_url_key
from webclip.fetch import Fetcher
from webclip.parquet import iter_rows, write_rows
from webclip.records import ATTEMPT_SCHEMA
from webclip.robots import RobotsCache, xrobots_forbids
from webclip.shards.config import ShardsConfig

LOG = logging.getLogger("webclip.shards")
logging.getLogger("exifread").setLevel(logging.CRITICAL)  # it warns on every odd tag; a bad EXIF is just null
OPT_OUT = "download/opt_out"
# img2dataset's status of a drop: the resizer decodes and checks sizes (failed_to_resize); policy drops keep their
# own reason as status (img2dataset has no such step); every other drop is failed_to_download.
FAILED_TO_RESIZE = frozenset({"download/corrupt_image", "download/bomb", "download/too_small",
                              "download/bad_aspect_ratio", "download/resize_error"})
POLICY = frozenset({OPT_OUT, "download/robots_disallowed", denylist.REASON})
LOGGED_ERRORS = 5  # per worker process: enough to see a bug, not a flood
_errors_seen = itertools.count()  # next() on a count is atomic under the GIL


@dataclass
class Downloaded:
    """A fetched, checked and resized sample, or the reason it was dropped."""

    uid: str
    reason: str | None = None
    sample: dict[str, Any] | None = None
    error: str | None = None  # for download/error: the URL and the traceback, kept as an example in the job's stats


@functools.cache
def img2dataset_resizer_module() -> ModuleType:
    """img2dataset's ``resizer`` module, loaded without the package ``__init__``.

    ``import img2dataset.resizer`` runs ``img2dataset/__init__.py``, which imports its downloader,
    writers, torch, webdataset and wandb: about 3 s per worker process for code we never call.
    The resizer module itself needs only albumentations, cv2 and numpy.
    """
    module = sys.modules.get("img2dataset.resizer") or _load_resizer()
    setattr(module, "SuppressStdoutStderr", SharedQuiet)  # noqa: B010  (its own is not safe for threads)
    return module


def _load_resizer() -> ModuleType:
    """img2dataset/resizer.py executed as a module of its own."""
    spec = importlib.util.find_spec("img2dataset")  # locates the package without executing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("img2dataset is not installed: pip install -e .[shards]")
    path = Path(next(iter(spec.submodule_search_locations))) / "resizer.py"
    module_spec = importlib.util.spec_from_file_location("webclip_img2dataset_resizer", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


class SharedQuiet:
    """img2dataset's silencer of fds 1 and 2 around cv2 (libpng's chatter), safe for threads.

    img2dataset saves and restores both fds on every call: two threads interleaving leave them on /dev/null
    for good, and every later message of the process (a stage's one-line error included) is lost. Here the
    first thread in silences them and the last one out restores them.
    """

    lock = threading.Lock()
    depth = 0
    saved: tuple[int, int] | None = None

    def __enter__(self) -> None:
        with SharedQuiet.lock:
            if SharedQuiet.depth == 0:
                null = os.open(os.devnull, os.O_RDWR)
                SharedQuiet.saved = (os.dup(1), os.dup(2))
                os.dup2(null, 1)
                os.dup2(null, 2)
                os.close(null)
            SharedQuiet.depth += 1

    def __exit__(self, *exc: object) -> None:
        with SharedQuiet.lock:
            SharedQuiet.depth -= 1
            if SharedQuiet.depth == 0 and SharedQuiet.saved is not None:
                for fd, saved in zip((1, 2), SharedQuiet.saved, strict=True):
                    os.dup2(saved, fd)
                    os.close(saved)
                SharedQuiet.saved = None


def make_resizer(cfg: ShardsConfig):  # noqa: ANN201
    """img2dataset's resizer configured from ``cfg``."""
    resizer = img2dataset_resizer_module()
    ResizeMode, Resizer = resizer.ResizeMode, resizer.Resizer  # noqa: N806

    return Resizer(image_size=cfg.image_size, resize_mode=ResizeMode[cfg.resize_mode],
                   resize_only_if_bigger=cfg.resize_only_if_bigger, encode_quality=cfg.encode_quality,
                   encode_format="jpg", min_image_size=cfg.min_image_size, max_aspect_ratio=cfg.max_aspect_ratio)


def check_image(data: bytes, max_pixels: int) -> tuple[Image.Image | None, str | None]:
    """Decode with Pillow under its bomb limit; returns (image, None) or (None, reason)."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            if probe.width * probe.height > max_pixels:
                return None, "bomb"
            probe.verify()
            image = Image.open(io.BytesIO(data))
            image.info["original_size"] = image.size
            image.draft("RGB", (256, 256))  # JPEG: decode at a reduced scale; enough for checks and pHash
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None, "bomb"
    except Exception:  # Pillow raises many types for corrupt or truncated data
        return None, "corrupt_image"
    return image, None


def compute_exif(data: bytes) -> str | None:
    """The image's EXIF tags as a JSON string, by img2dataset's rule: exifread's tags without the thumbnail
    and maker notes, each value as stripped text, in the reader's order; ``"{}"`` without EXIF, null if unreadable."""
    import exifread

    try:
        tags = exifread.process_file(io.BytesIO(data), details=False)
        return json.dumps({k: str(v).strip() for k, v in tags.items() if v is not None})
    except Exception:  # exifread raises many types on malformed EXIF; img2dataset stores null then
        return None


def download_status(reason: str | None) -> str:
    """img2dataset's ``status`` of an outcome (see ``FAILED_TO_RESIZE`` and ``POLICY``)."""
    if reason is None:
        return "success"
    if reason in POLICY:
        return reason
    return "failed_to_resize" if reason in FAILED_TO_RESIZE else "failed_to_download"


def download_one(row: dict[str, Any], fetcher: Fetcher, robots: RobotsCache | None, resizer: Any,
                 cfg: ShardsConfig, deny: denylist.Denylist | None = None) -> Downloaded:
    """One curated pair -> a WebDataset sample or a named drop reason (never raises for bad data).

    A pair the run's denylist names is dropped before any request (``optout/denylisted``); one whose
    image turns out to have a denied sha256 is dropped after the fetch.
    """
    uid, url = row["uid"], row["image_url"]
    if deny and denylist.match(deny, url, row["page_url"]):
        return Downloaded(uid, denylist.REASON)
    check = robots.check if robots is not None else None
    refused = check(url) if check is not None else None
    if refused:
        return Downloaded(uid, f"download/{refused}")
    r = fetcher.get(url, check=check)  # robots.txt of every redirect target's host too
    if r.error:
        return Downloaded(uid, f"download/{r.error}")
    if not r.ok:
        return Downloaded(uid, f"download/http_{r.status}")
    if xrobots_forbids(r.headers.get("x-robots-tag", ""), cfg.opt_out_tokens, cfg.robots_agent):
        return Downloaded(uid, OPT_OUT)
    ctype = r.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and not ctype.startswith("image/") and ctype != "application/octet-stream":
        return Downloaded(uid, "download/not_image")
    sha = image_sha256(r.body)
    if deny and denylist.match(deny, sha256=sha):
        return Downloaded(uid, denylist.REASON)
    image, reason = check_image(r.body, cfg.max_image_pixels)
    if image is None:
        return Downloaded(uid, f"download/{reason}")
    if min(image.info.get("original_size", image.size)) < cfg.min_image_size:
        return Downloaded(uid, "download/too_small")
    jpg, width, height, ow, oh, err = resizer(io.BytesIO(r.body))
    if err is not None or jpg is None:
        text = str(err or "")
        return Downloaded(uid, "download/too_small" if "small" in text else "download/bad_aspect_ratio"
                          if "aspect" in text else "download/resize_error")
    meta = {"uid": uid, "key": uid, "caption": row["caption"], "image_url": url, "page_url": row["page_url"],
            "lang": row["lang"], "entry_ids": list(row["entry_ids"]), "width": int(width), "height": int(height),
            "original_width": int(ow), "original_height": int(oh), "sha256": sha, "phash": phash_hex(image),
            "url": url, "status": "success", "error_message": None, "exif": compute_exif(r.body)}
    return Downloaded(uid, None, {"key": uid, "jpg": jpg, "txt": row["caption"], "json": meta})


def download_contained(row: dict[str, Any], fetcher: Fetcher, robots: RobotsCache | None, resizer: Any,
                       cfg: ShardsConfig, deny: denylist.Denylist | None = None) -> Downloaded:
    """The stage's failure boundary: ``download_one``, with any exception a ``download/error`` drop (first few logged)."""
    try:
        return download_one(row, fetcher, robots, resizer, cfg, deny)
    except Exception:  # a bug or an input nobody foresaw: counted and shown, never the end of the job
        trace = traceback.format_exc()
        if next(_errors_seen) < LOGGED_ERRORS:
            LOG.error("download/error uid=%s url=%s\n%s", row.get("uid"), row.get("image_url"), trace)
        return Downloaded(str(row.get("uid")), "download/error", error=f"{row.get('image_url')}\n{trace}")



def attempt_row(row: dict[str, Any], result: Downloaded) -> dict[str, Any]:
    """The attempts table's row of one pair: img2dataset's per-shard Parquet row (see ``records.ATTEMPT_SCHEMA``)."""
    meta = (result.sample or {}).get("json", {})
    return {"key": row["uid"], "uid": row["uid"], "url": row["image_url"], "page_url": row["page_url"],
            "caption": row["caption"], "status": download_status(result.reason), "error_message": result.reason,
            **{k: meta.get(k) for k in ("width", "height", "original_width", "original_height", "exif", "sha256")}}


def attempts_path(jobs_dir: str, job: str) -> str:
    """Where job ``job`` keeps its attempts: ``jobs/attempts/{job}.parquet`` (a folder of one schema)."""
    return storage.join(jobs_dir, "attempts", f"{job}.parquet")


def write_attempts(jobs_dir: str, job: str, rows: list[dict[str, Any]], results: list[Downloaded],
                   resumed: bool) -> int:
    """Write the job's attempts, sorted by uid; a resumed job keeps its earlier rows but for the pairs tried again."""
    fresh = {r["uid"]: attempt_row(r, res) for r, res in zip(rows, results, strict=True)}
    path = attempts_path(jobs_dir, job)
    earlier = [a for a in iter_rows([path]) if a["uid"] not in fresh] if resumed and storage.exists(path) else []
    return write_rows(path, earlier + list(fresh.values()), ATTEMPT_SCHEMA)


def optout_entries(attempts: list[dict[str, Any]]) -> list[denylist.Entry]:
    """Denylist entries for the images whose own X-Robots-Tag opted out: never fetched again, in any run."""
    return sorted({denylist.Entry("image_url", image_url_key(a["url"]), "opt_out/x_robots_tag")
                   for a in attempts if a["error_message"] == OPT_OUT})


def snapshot_denylist(run: str | Path, jobs_dir: str) -> None:
    """Copy the run's denylist (its own entries and the shared files') to ``jobs/_denylist.jsonl`` for the workers."""
    storage.write_bytes(storage.join(jobs_dir, "_denylist.jsonl"),
                        denylist.entries_bytes(e for p in denylist.run_files(run) for e in denylist.read_entries(p)))


def job_denylist(jobs_dir: str) -> denylist.Denylist:
    """The denylist a download job honours (the launcher's snapshot; empty if none was taken)."""
    return denylist.load([storage.join(jobs_dir, "_denylist.jsonl")])


def record_optouts(run: str | Path, jobs_dir: str, jobs: list[str]) -> int:
    """Add the images the jobs found opted out to the run's denylist (``optout-shards.jsonl``); the new ones."""
    paths = [p for j in jobs if storage.exists(p := attempts_path(jobs_dir, j))]
    return denylist.record(run, "optout-shards", optout_entries(list(iter_rows(paths, columns=["url", "error_message"]))))


def denied_in_jobs(jobs_dir: str, jobs: list[str]) -> dict[str, str]:
    """uid -> ``optout/denylisted`` of the job samples the denylist names now: downloaded before it named them
    (a finished job kept by a resumed stage), they never reach the final shards."""
    deny = job_denylist(jobs_dir)
    if not deny:
        return {}
    rows = iter_rows([storage.join(jobs_dir, f"{j}.parquet") for j in jobs],
                     columns=["uid", "image_url", "page_url", "sha256"])
    return {r["uid"]: denylist.REASON for r in rows if denylist.row_denied(deny, r)}
