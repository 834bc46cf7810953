"""Run-folder contract and stable hashing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from webclip.hashing import candidate_uid, sha256_hex, unit_draw
from webclip.runfolder import StageConflict, StageDir
from webclip.stats import AccountingError, Tally, check_identity


def test_stage_skip_conflict_force(tmp_path) -> None:
    st = StageDir(tmp_path, "curated")
    assert st.prepare({"a": 1}) is True
    st.finish({"in": 1, "kept": 1, "dropped": {}})
    assert st.prepare({"a": 1}) is False
    with pytest.raises(StageConflict):
        st.prepare({"a": 2})
    assert st.prepare({"a": 2}, force=True) is True
    assert not st.done


def test_redone_upstream_invalidates_finished_downstream(tmp_path) -> None:
    from webclip.runfolder import input_fingerprints

    up, down = StageDir(tmp_path, "curated"), StageDir(tmp_path, "shards")
    up.prepare({"u": 1})
    up.finish({"in": 2, "kept": 2, "dropped": {}})
    assert down.prepare({"d": 1}, inputs=input_fingerprints(tmp_path, ("curated",))) is True
    down.finish({"in": 2, "kept": 2, "dropped": {}})
    assert down.prepare({"d": 1}, inputs=input_fingerprints(tmp_path, ("curated",))) is False  # nothing changed
    up.prepare({"u": 2}, force=True)
    up.finish({"in": 3, "kept": 1, "dropped": {"filter/x": 2}})
    with pytest.raises(StageConflict, match="curated changed since"):
        down.prepare({"d": 1}, inputs=input_fingerprints(tmp_path, ("curated",)))
    assert down.prepare({"d": 1}, force=True, inputs=input_fingerprints(tmp_path, ("curated",))) is True


def test_uid_contract() -> None:
    assert candidate_uid("http://x/a.jpg", "a cat") == sha256_hex("http://x/a.jpg\ta cat")


def test_unit_draw_is_process_independent() -> None:
    code = "from webclip.hashing import unit_draw; print(repr(unit_draw(7, 'abc')))"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert outs == {repr(unit_draw(7, "abc")) + "\n"}
    assert 0 <= unit_draw(7, "abc") < 1


def test_identity_checked() -> None:
    t = Tally("x", n_in=3, kept=1)
    t.drop("filter/a", 2)
    t.check()
    with pytest.raises(AccountingError):
        check_identity({"in": 3, "kept": 1, "dropped": {"a/b": 1}})


def test_runtime_knobs_never_refuse_skip_or_clear(tmp_path) -> None:
    st = StageDir(tmp_path, "candidates")
    runtime = ("threads", "progress")
    assert st.prepare({"a": 1, "threads": 4, "progress": True}, runtime=runtime) is True
    (st.path / "_work").mkdir()
    (st.path / "_work" / "journal.jsonl").write_text("kept\n")
    # An unfinished stage resumed with other run-time knobs keeps its work; config.json records the new whole config.
    assert st.prepare({"a": 1, "threads": 32, "progress": False}, runtime=runtime) is True
    assert (st.path / "_work" / "journal.jsonl").read_text() == "kept\n"
    assert st.saved_config() == {"a": 1, "threads": 32, "progress": False}
    st.finish({"in": 1, "kept": 1, "dropped": {}})
    assert st.prepare({"a": 1, "threads": 2, "progress": True}, runtime=runtime) is False  # skipped, not refused
    with pytest.raises(StageConflict):
        st.prepare({"a": 2, "threads": 32, "progress": False}, runtime=runtime)
    with pytest.raises(StageConflict):  # without the runtime list every field decides, as before
        st.prepare({"a": 1, "threads": 2, "progress": True})
    # An unfinished stage with an output-changing field changed starts over.
    other = StageDir(tmp_path, "curated")
    other.prepare({"a": 1, "threads": 1}, runtime=runtime)
    (other.path / "data").mkdir()
    (other.path / "data" / "part-00000.parquet").write_text("old")
    other.prepare({"a": 9, "threads": 1}, runtime=runtime)
    assert not (other.path / "data" / "part-00000.parquet").exists()
