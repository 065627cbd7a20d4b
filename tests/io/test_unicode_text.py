"""Text that UTF-8 cannot encode: an unpaired surrogate escape in JSON is refused where it is read (its line and
column named), and a file name with bytes that are not UTF-8 stops an export with exit code 2 and a message that
quotes it, writing nothing."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from maslow import io
from maslow.cli.main import app
from maslow.errors import FormatError
from maslow.sample import shapes


@pytest.mark.parametrize("escape", ["\\ud800", "\\udc00", "\\ud800x", "\\ud800\\u0041"])
def test_unpaired_surrogate_in_coco_is_refused_at_its_position(tmp_path: Path, escape: str) -> None:
    src = tmp_path / "a.json"
    io.write_coco(shapes(3), src)
    text = src.read_text()
    cut = text.index('"name": "') + len('"name": "') if '"name": "' in text else text.index('"name":"') + 8
    src.write_text(text[:cut] + escape + text[cut:])
    line = text[:cut].count("\n") + 1
    with pytest.raises(FormatError, match=rf"a\.json: malformed JSON at line {line} .*surrogate.*valid Unicode"):
        io.read_coco(src)


def test_paired_surrogates_still_read(tmp_path: Path) -> None:
    src = tmp_path / "a.json"
    ds = shapes(3)
    io.write_coco(ds, src)
    data = json.loads(src.read_text())
    data["categories"][0]["name"] = "cat \U0001f431"  # json.dumps writes it as the pair \ud83d\udc31
    src.write_text(json.dumps(data))
    assert "\\ud83d\\udc31" in src.read_text()
    assert io.read_coco(src).schema.classes[0].name == "cat \U0001f431"


@pytest.mark.skipif(sys.platform != "linux", reason="a file name of raw bytes needs a byte-named file system")
def test_export_of_a_non_utf8_file_name_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "src" / "cat").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "src" / "cat" / "ok.png")
    Image.new("RGB", (8, 8)).save(os.fsdecode(bytes(tmp_path / "src" / "cat") + b"/\xff.png"))
    out = tmp_path / "out.json"
    res = CliRunner().invoke(app, ["convert", str(tmp_path / "src"), str(out), "--from", "imagefolder",
                                   "--to", "coco"])
    assert res.exit_code == 2, res.output
    assert "cannot encode" in res.output and "\\xff" in res.output and "rename it" in res.output
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "src"]


def test_unpaired_surrogate_in_label_studio_names_task_and_line(tmp_path: Path) -> None:
    import re

    src = tmp_path / "ls.json"
    io.write_labelstudio(shapes(3), src)
    text = src.read_text()
    cut = re.search(r'labels":\s*\[\s*"', text)
    assert cut is not None
    src.write_text(text[:cut.end()] + "\\ud800" + text[cut.end():])
    line = text[:cut.end()].count("\n") + 1
    with pytest.raises(FormatError, match=rf"ls\.json, task 1: malformed JSON at line {line} .*surrogate"):
        io.read_labelstudio(src)
