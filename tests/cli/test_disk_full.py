"""A write the disk refuses (full, over a file size limit) while an output is written: exit 2 naming the output,
no traceback, nothing left behind (the temp output removed), the previous output untouched."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from maslow import io
from maslow.sample import write_shapes


def _limit() -> None:  # writes past 4 KB fail with EFBIG (Python ignores SIGXFSZ)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize(("fmt", "name"), [("coco", "out.json"), ("parquet", "out.parquet"), ("labelstudio", "ls.json")])
def test_an_output_over_the_size_limit_exits_2_and_leaves_nothing(tmp_path: Path, fmt: str, name: str) -> None:
    ds = write_shapes(tmp_path / "shapes", 60, seed=1)
    io.write(ds, tmp_path / "shapes" / "annotations.json", "coco")
    dst = tmp_path / "dst" / name
    dst.parent.mkdir()
    if fmt == "coco":
        dst.write_text("previous output\n")
    proc = subprocess.run([sys.executable, "-m", "maslow", "convert", str(tmp_path / "shapes" / "annotations.json"),
                           str(dst), "--from", "coco", "--to", fmt], capture_output=True, text=True,
                          preexec_fn=_limit, timeout=300)
    flat = " ".join(proc.stderr.split())
    assert proc.returncode == 2, proc.stderr  # was 1: an OSError traceback
    assert "Traceback" not in proc.stderr and f"{dst}: could not be written: file too large" in flat
    left = sorted(p.name for p in dst.parent.iterdir())
    assert left == ([name] if fmt == "coco" else [])
    if fmt == "coco":
        assert dst.read_text() == "previous output\n"
