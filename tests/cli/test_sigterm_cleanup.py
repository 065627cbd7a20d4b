"""SIGTERM during a write: ``maslow`` exits with 143 and leaves no temp folder or half output behind (as Ctrl-C)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# A `maslow convert` whose atomic folder write gets SIGTERM once the writer has filled the temp folder, before the
# rename: the patch goes in before the CLI's modules import atomic_dir.
_SCRIPT = r"""
import contextlib, os, signal, sys, time
import maslow.core.atomic as A
real = A.atomic_dir

@contextlib.contextmanager
def interrupted(path):
    with real(path) as tmp:
        yield tmp
        assert any(tmp.iterdir())  # the writer wrote into the temp folder
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # never reached when SIGTERM is handled: the test would time out instead

A.atomic_dir = interrupted
from maslow.cli.main import main
sys.argv = ["maslow", "convert", sys.argv[1], sys.argv[2], "--from", "coco", "--to", "yolo"]
main()
"""


def test_sigterm_removes_the_temp_folder(tmp_path: Path) -> None:
    src = tmp_path / "in.json"
    src.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0}]}))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(src), str(out)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 128 + 15, proc.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json"]  # no .out.<pid>-...tmp left
