"""Record types passed between stages, each with its Parquet schema beside it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pyarrow as pa

SOURCES = ("crawl", "warc", "wat")


@dataclass(frozen=True)
class Candidate:
    """One ``<img>`` seen on one page: the crawl stage's output row."""

    uid: str
    image_url: str
    alt: str
    page_url: str
    page_lang: str | None
    width: int | None
    height: int | None
    srcset_url: str | None
    source: str
    opt_out: bool


CANDIDATE_SCHEMA = pa.schema(
    [
        pa.field("uid", pa.string(), nullable=False),
        pa.field("image_url", pa.string(), nullable=False),
        pa.field("alt", pa.string(), nullable=False),
        pa.field("page_url", pa.string(), nullable=False),
        pa.field("page_lang", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("srcset_url", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("opt_out", pa.bool_(), nullable=False),
    ]
)


@dataclass(frozen=True)
class Curated(Candidate):
    """A candidate that passed curation: normalised caption, detected language, matches."""

    caption: str = ""
    lang: str = ""
    entry_ids: list[int] = field(default_factory=list)
    keep_prob: float = 1.0


CURATED_SCHEMA = CANDIDATE_SCHEMA.append(pa.field("caption", pa.string(), nullable=False)).append(
    pa.field("lang", pa.string(), nullable=False)
).append(pa.field("entry_ids", pa.list_(pa.int32()), nullable=False)).append(
    pa.field("keep_prob", pa.float64(), nullable=False)
)

# Pool rows: every matched pair before balancing, with the balancing decision.
POOL_SCHEMA = CURATED_SCHEMA.append(pa.field("kept", pa.bool_(), nullable=False))

# One row per downloaded sample in shards (job parquet and final parquet).
SAMPLE_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("uid", pa.string(), nullable=False),
        pa.field("caption", pa.string(), nullable=False),
        pa.field("image_url", pa.string(), nullable=False),
        pa.field("page_url", pa.string(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("entry_ids", pa.list_(pa.int32()), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("original_width", pa.int32(), nullable=False),
        pa.field("original_height", pa.int32(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("phash", pa.string(), nullable=False),
        # img2dataset's names: the image URL again, "success", null, and the EXIF tags as a JSON string
        pa.field("url", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error_message", pa.string()),
        pa.field("exif", pa.string()),
    ]
)

# One row per pair a download job attempted, as img2dataset's per-shard Parquet: the outcome of its last try.
# status: "success", "failed_to_download", "failed_to_resize", or a policy drop's reason (download/opt_out,
# download/robots_disallowed, optout/denylisted); error_message: the drop reason (null on success).
ATTEMPT_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("uid", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("page_url", pa.string(), nullable=False),
        pa.field("caption", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error_message", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("original_width", pa.int32()),
        pa.field("original_height", pa.int32()),
        pa.field("exif", pa.string()),
        pa.field("sha256", pa.string()),
    ]
)


# The shards stage's samples table (shards/samples/): each sample's split and the tar that holds it.
FINAL_SAMPLE_SCHEMA = SAMPLE_SCHEMA.append(pa.field("split", pa.string(), nullable=False)).append(
    pa.field("shard", pa.string(), nullable=False)
)


def to_row(record: Any) -> dict[str, Any]:
    """A record dataclass as a plain dict (one Parquet row)."""
    return asdict(record)


def from_row(cls: type, row: dict[str, Any]) -> Any:
    """Build a record dataclass from a row dict, ignoring unknown columns."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in row.items() if k in names})


def table_from_rows(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """A table with exactly ``schema``'s columns, in order."""
    return pa.Table.from_pylist([{n: r.get(n) for n in schema.names} for r in rows], schema=schema)
