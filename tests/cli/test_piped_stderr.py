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


def test_a_note_on_a_piped_stderr_is_one_line(tmp_path: Path) -> None:
    """Notes were wrapped at rich's 80 columns off a terminal, so a grep of a CI log for a note's text missed it."""
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-m", "maslow", "select", str(tmp_path / "empty"), "-e", "light"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    note = [line for line in proc.stderr.splitlines() if "no images found" in line]
    assert len(note) == 1 and note[0].rstrip().endswith(".gif)"), repr(proc.stderr)
