"""Exact and near-duplicate search on Beam: sha256 groups and banded pHash buckets, edges to the launcher
(through a scratch file on any Beam filesystem, never the launcher's own temporary folder)."""

from __future__ import annotations

import apache_beam as beam

from webclip.beamio import scratch_path, take_json, write_json
from webclip.config import BeamRunner
from webclip.dedupe.images import band_keys, bucket_edges, exact_edges, resolve_groups


class DuplicateEdges(beam.PTransform):
    """(uid, sha256, phash) -> (uid_a, uid_b, kind) edges; pairs are only compared inside a bucket."""

    def __init__(self, threshold: int):
        super().__init__()
        self.threshold = threshold

    def expand(self, items):
        t = self.threshold
        exact = (items | "BySha" >> beam.Map(lambda x: (x[1], x[0])) | "GroupSha" >> beam.GroupByKey()
                 | "ExactEdges" >> beam.FlatMap(lambda kv: exact_edges(list(kv[1]))))
        if t < 0:  # near-duplicate search off: exact duplicates only
            return exact | "Distinct" >> beam.Distinct()
        near = (items | "Bands" >> beam.FlatMap(lambda x: [(k, (x[0], x[2])) for k in band_keys(x[2], t)])
                | "GroupBand" >> beam.GroupByKey()
                | "NearEdges" >> beam.FlatMap(lambda kv: bucket_edges(list(kv[1]), t)))
        return (exact, near) | "AllEdges" >> beam.Flatten() | "Distinct" >> beam.Distinct()


def duplicate_groups_beam(items: list[tuple[str, str, str]], threshold: int, runner: BeamRunner,
                          scratch_under: str) -> dict[str, tuple[str, str]]:
    """Same result as ``dedupe.images.duplicate_groups``, with the search distributed by Beam.

    The workers hand the edges to the launcher through a scratch file on a Beam filesystem both reach
    (``--temp_location``, else ``scratch_under``: the stage's output folder); see ``beamio.scratch_path``.
    """
    options = runner.beam_options()
    path = scratch_path(options, scratch_under, "duplicate-edges")
    with beam.Pipeline(options=options) as p:
        (p | beam.Create(items) | DuplicateEdges(threshold) | beam.combiners.ToList()
         | beam.Map(sorted) | beam.Map(write_json, path))
    edges = [tuple(e) for e in take_json(path)]
    return resolve_groups((uid for uid, _, _ in items), edges)
