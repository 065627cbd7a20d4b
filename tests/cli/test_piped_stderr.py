"""A command whose stderr is a log or a pipe (CI) got one empty line there per progress bar it ran (``select``:
four, ``outliers``: two): a bar is drawn only on a terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from maslow.sample import write_shapes


def test_no_empty_lines_on_a_piped_stderr(tmp_path: Path) -> None:
    write_shapes(tmp_path / "shapes", 8, seed=0)
    cmd = [sys.executable, "-m", "maslow", "select", str(tmp_path / "shapes" / "images"), "--budget", "3",
           "--embedder", "light", "--cache-dir", str(tmp_path / "cache")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and not [i for i, line in enumerate(lines) if not line.strip()], repr(proc.stderr)
