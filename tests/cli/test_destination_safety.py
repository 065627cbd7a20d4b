"""Writing a dataset never deletes data by surprise. ``maslow convert``/``export``/``sample`` replaced any existing
DST folder (a folder of notes, the source folder itself, a whole workspace); ``.`` and ``..`` crashed with a
traceback. Now a folder that is not empty needs ``--overwrite``, and the data read, a workspace and the current
folder are refused even with it (exit 2, a message naming DST)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from maslow import io
from maslow.sample import write_shapes
from tests.helpers import flat_text
from tests.helpers import run_cli_streams as _run


@pytest.fixture
def shapes(tmp_path: Path) -> Path:
    """The sample (6 images, COCO) in ``tmp_path/shapes``; the current folder is ``tmp_path``."""
    ds = write_shapes(tmp_path / "shapes", 6, seed=0)
    io.write_coco(ds, tmp_path / "shapes" / "annotations.json")
    return tmp_path / "shapes"


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def _refused(args: list[str], *needles: str) -> str:
    code, out, err = _run(args)  # a traceback (any other exception) fails the test in _run
    text = flat_text(err)
    assert code == 2 and not out, (code, out, err)
    for needle in needles:
        assert needle in text, text
    return text


def test_a_folder_that_is_not_empty_is_refused_without_overwrite(here: Path, shapes: Path) -> None:
    (here / "out").mkdir()
    (here / "out" / "notes.txt").write_text("keep")
    _refused(["convert", "shapes/annotations.json", "out", "--from", "coco", "--to", "yolo"],
             "DST out", "not empty", "--overwrite")
    assert _files(here / "out") == ["notes.txt"] and (here / "out" / "notes.txt").read_text() == "keep"


def test_overwrite_replaces_a_previous_output(here: Path, shapes: Path) -> None:
    convert = ["convert", "shapes/annotations.json", "out", "--from", "coco", "--json"]
    code, out, err = _run([*convert, "--to", "yolo"])
    assert code == 0, err
    _refused([*convert, "--to", "voc"], "--overwrite")
    assert (here / "out" / "data.yaml").is_file()  # the YOLO output is untouched
    code, out, err = _run([*convert, "--to", "voc", "--overwrite"])
    assert code == 0, err
    assert json.loads(out)["export"]["format"] == "voc"
    assert (here / "out" / "Annotations").is_dir() and not (here / "out" / "data.yaml").exists()
    assert sorted(p.name for p in here.iterdir()) == ["out", "shapes"]  # no temp or old folder left


@pytest.mark.parametrize("dst", ["", "/new", "/empty"], ids=["missing-parent", "new", "empty"])
def test_a_new_or_empty_folder_is_written_as_before(here: Path, shapes: Path, dst: str) -> None:
    (here / "empty").mkdir()
    target = f"{here}/gone/deeper" if not dst else f"{here}{dst}"
    code, _, err = _run(["convert", "shapes/annotations.json", target, "--from", "coco", "--to", "yolo"])
    assert code == 0, err
    assert (Path(target) / "data.yaml").is_file()


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
def test_the_source_folder_is_refused_even_with_overwrite(here: Path, shapes: Path, overwrite: bool) -> None:
    shutil.copytree(shapes, here / "s2")
    before = _files(here / "s2")
    _refused(["convert", "s2/annotations.json", "s2", "--from", "coco", "--to", "voc",
              *(["--overwrite"] if overwrite else [])], "DST s2", "data read", "s2/annotations.json")
    assert _files(here / "s2") == before


def test_the_images_read_are_refused_even_with_overwrite(here: Path, shapes: Path) -> None:
    before = _files(shapes)
    _refused(["convert", "shapes/annotations.json", "shapes/images", "--from", "coco", "--to", "yolo", "--overwrite"],
             "DST shapes/images", "data read")
    (here / "alias").symlink_to(shapes, target_is_directory=True)  # the source through a symlink
    _refused(["convert", "shapes/annotations.json", "alias", "--from", "coco", "--to", "yolo", "--overwrite"],
             "DST alias", "data read")
    assert _files(shapes) == before


def test_the_file_read_is_refused(here: Path, shapes: Path) -> None:
    before = (shapes / "annotations.json").read_bytes()
    _refused(["convert", "shapes/annotations.json", "shapes/annotations.json", "--from", "coco", "--to", "coco"],
             "the file read")
    assert (shapes / "annotations.json").read_bytes() == before


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["plain", "overwrite"])
@pytest.mark.parametrize("dst", [".", ".."])
@pytest.mark.parametrize("fmt", ["yolo", "coco"])
def test_the_current_folder_and_its_parent_are_refused_cleanly(here: Path, shapes: Path, dst: str, fmt: str,
                                                               overwrite: list[str]) -> None:
    """``convert ... .`` was a ValueError traceback (exit 1), ``..`` an OSError one."""
    (here / "notes.txt").write_text("keep")
    before = _files(here)
    text = _refused(["convert", "shapes/annotations.json", dst, "--from", "coco", "--to", fmt, *overwrite], dst)
    assert ("must not be the current folder" if fmt == "yolo" else "is a folder") in text
    assert _files(here) == before


@pytest.fixture
def ws(here: Path, shapes: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace in ``here/ws`` holding the sample as dataset ``shapes``; the current folder."""
    (here / "ws").mkdir()
    monkeypatch.chdir(here / "ws")
    for args in (["init"], ["import", "../shapes/annotations.json", "--from", "coco", "--name", "shapes"]):
        code, _, err = _run(args)
        assert code == 0, err
    return here / "ws"


def test_a_workspace_is_refused_even_with_overwrite(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _files(ws)
    _refused(["export", "shapes", ".", "--to", "voc", "--overwrite"], "must not be the current folder")
    _refused(["export", "shapes", "..", "--to", "voc", "--overwrite"], "must not be the current folder")
    _refused(["export", "shapes", ".maslow/versions", "--to", "voc", "--overwrite"], "maslow workspace")
    _refused(["export", "shapes", "maslow.yaml", "--to", "coco"], "maslow workspace")
    monkeypatch.chdir(ws.parent)  # the workspace root, from beside it (not the current folder): the audit's case
    _refused(["convert", "shapes/annotations.json", "ws", "--from", "coco", "--to", "voc", "--overwrite"],
             "DST ws", "maslow workspace")
    assert _files(ws) == before


def test_a_folder_holding_another_workspace_is_refused(ws: Path) -> None:
    other = ws / "exports" / "other-ws"
    other.mkdir(parents=True)
    assert _run(["init", str(other)])[0] == 0
    _refused(["export", "shapes", "exports", "--to", "yolo", "--overwrite"], "DST exports", "maslow workspace")
    assert (other / "maslow.yaml").is_file() and (other / ".maslow").is_dir()


def test_export_needs_overwrite_to_replace_its_previous_output(ws: Path) -> None:
    code, _, err = _run(["export", "shapes", "out", "--to", "voc"])
    assert code == 0, err
    _refused(["export", "shapes", "out", "--to", "yolo"], "DST out", "--overwrite")
    assert (ws / "out" / "Annotations").is_dir()
    code, out, err = _run(["export", "shapes", "out", "--to", "yolo", "--overwrite", "--json"])
    assert code == 0, err
    assert json.loads(out)["format"] == "yolo" and not (ws / "out" / "Annotations").exists()


def test_a_panoptic_export_checks_its_png_folder(here: Path, shapes: Path) -> None:
    convert = ["convert", "shapes/annotations.json", "pan/p.json", "--from", "coco", "--to", "coco-panoptic"]
    assert _run(convert)[0] == 0
    _refused(convert, "DST pan/p", "--overwrite")  # was "pan/p.json is a file", with no way to write it again
    code, _, err = _run([*convert, "--overwrite"])
    assert code == 0, err


def test_sample_needs_overwrite_for_a_folder_that_is_not_empty(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (here / "mine").mkdir()
    (here / "mine" / "annotations.json").write_text('{"mine": true}')
    _refused(["sample", "mine", "-n", "2"], "DST mine", "--overwrite")
    assert (here / "mine" / "annotations.json").read_text() == '{"mine": true}'
    code, out, err = _run(["sample", "mine", "-n", "2", "--overwrite", "--json"])
    assert code == 0, err
    assert json.loads(out)["path"] == str(Path("mine") / "annotations.json")
    assert io.read_coco(here / "mine" / "annotations.json").n_images == 2
    (here / "empty").mkdir()
    monkeypatch.chdir(here / "empty")  # an empty current folder is written into, as before
    code, _, err = _run(["sample", ".", "-n", "2"])
    assert code == 0, err
    assert (here / "empty" / "annotations.json").is_file()


@pytest.mark.parametrize("args", [["convert", "shapes/annotations.json", "{long}", "--from", "coco", "--to", "yolo"],
                                  ["convert", "shapes/annotations.json", "{long}.json", "--from", "coco", "--to",
                                   "coco"],
                                  ["sample", "{long}", "-n", "2"]], ids=["folder", "file", "sample"])
def test_a_dst_that_cannot_be_looked_at_is_an_error_not_a_traceback(here: Path, shapes: Path,
                                                                    args: list[str]) -> None:
    _refused([a.replace("{long}", "x" * 300) for a in args], "DST xxx", "file name too long")
