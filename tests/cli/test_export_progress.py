"""``maslow export`` and ``maslow convert`` show a progress bar of the images written on a terminal (was a spinner
only: 30 s of "writing yolo to out" for 200,000 images), nothing with --json."""

from __future__ import annotations

import io as _io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from tests.helpers import run_cli_streams as _run


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> _io.StringIO:
    """stderr as a terminal (rich draws bars and spinners only there): what was drawn, control codes and all."""
    from maslow.cli import render

    buf = _io.StringIO()
    monkeypatch.setattr(render, "err_console", Console(file=buf, force_terminal=True, width=200))
    return buf


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace with the 9-image sample imported as ``s``; the current folder."""
    monkeypatch.chdir(tmp_path)
    for args in (["init"], ["sample", "shapes", "-n", "9", "--json"],
                 ["import", "shapes/annotations.json", "--from", "coco", "--name", "s", "--json"]):
        code, _, err = _run(args)
        assert code == 0, err
    return tmp_path


def _drawn(buf: _io.StringIO, label: str) -> list[str]:
    """The frames drawn for ``label`` (text between cursor moves, escape codes removed)."""
    text = re.sub(r"\x1b\[[0-9;?]*[ABKl]", "\n", buf.getvalue())  # cursor moves, line erases: a new frame
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)  # colours
    return [line.strip() for line in text.replace("\r", "\n").split("\n") if label in line]


@pytest.mark.parametrize("fmt", ["yolo", "voc", "cvat", "coco"])
def test_export_draws_a_bar_of_the_images_written(ws: Path, terminal: _io.StringIO, fmt: str) -> None:
    dst = "out.xml" if fmt == "cvat" else "out.json" if fmt == "coco" else "out"
    code, out, err = _run(["export", "s", dst, "--to", fmt])
    assert code == 0, err
    frames = _drawn(terminal, f"writing {fmt} to {dst}")
    total = 9
    if fmt == "coco":  # COCO counts records: the images, then the annotations
        coco = json.loads((ws / "shapes/annotations.json").read_text())
        total = len(coco["images"]) + len(coco["annotations"])
    assert any(f"{total}/{total}" in f for f in frames), frames  # the spinner drew no count
    assert "Wrote 9 images" in out


def test_convert_draws_a_bar_and_json_draws_nothing(ws: Path, terminal: _io.StringIO) -> None:
    code, _, err = _run(["convert", "shapes/annotations.json", "voc_out", "--from", "coco", "--to", "voc"])
    assert code == 0, err
    assert any("9/9" in f for f in _drawn(terminal, "writing voc to voc_out")), terminal.getvalue()
    terminal.truncate(0)
    terminal.seek(0)
    code, out, err = _run(["convert", "shapes/annotations.json", "voc_json", "--from", "coco", "--to", "voc",
                           "--json"])
    assert code == 0, err
    assert json.loads(out)["export"]["n_images"] == 9
    assert "writing" not in terminal.getvalue()

