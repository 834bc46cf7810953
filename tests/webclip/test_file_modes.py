"""Finished files follow the process umask (0644 by default), as img2dataset's do, not mkstemp's 0600."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from webclip.parquet import write_rows
from webclip.records import CANDIDATE_SCHEMA
from webclip.runfolder import StageDir, atomic_write_bytes

SCRIPT = """
import sys
from pathlib import Path
from webclip.runfolder import StageDir, atomic_write_bytes
out = Path(sys.argv[1])
atomic_write_bytes(out / "a.bin", b"x")
st = StageDir(out, "stage")
st.prepare({"k": 1})
st.finish({"unit": "x", "in": 0, "kept": 0, "dropped": {}})
"""


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_outputs_are_world_readable_under_the_default_umask(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "blob.bin", b"data")
    write_rows(tmp_path / "part-00000.parquet", [], CANDIDATE_SCHEMA)
    st = StageDir(tmp_path, "stage")
    st.prepare({"k": 1})
    st.finish({"unit": "x", "in": 0, "kept": 0, "dropped": {}})
    expected = 0o666 & ~_umask()
    for p in (tmp_path / "blob.bin", tmp_path / "part-00000.parquet", st.path / "_SUCCESS",
              st.path / "stats.json", st.path / "config.json"):
        assert _mode(p) == expected, (p, oct(_mode(p)))


def test_a_stricter_umask_is_honoured(tmp_path: Path) -> None:
    subprocess.run(["sh", "-c", f"umask 077 && exec {sys.executable} -c '{SCRIPT}' {tmp_path}"], check=True,
                   timeout=60, env={**os.environ})
    assert _mode(tmp_path / "a.bin") == 0o600
    assert _mode(tmp_path / "stage" / "_SUCCESS") == 0o600


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
