"""``maslow convert`` and ``maslow import`` refuse (exit 2, nothing written) an input none of whose annotations could
be read: YOLO detect labels read with ``task=obb`` gave 77 errors, then "Wrote 48 images, 0 annotations" and exit 0.
An input read in part is still written with its report, and an input without annotations is not refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maslow import io
from maslow.sample import write_shapes
from tests.helpers import flat_text, run_cli, run_cli_streams


@pytest.fixture(scope="module")
def yolo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("nothing_read")
    ds = write_shapes(d / "shapes", 12, seed=0)
    io.write(ds, d / "shapes" / "annotations.json", "coco")
    code, out = run_cli(["convert", str(d / "shapes" / "annotations.json"), str(d / "y"), "--from", "coco",
                         "--to", "yolo", "--write-option", "task=detect"])
    assert code == 0, out
    return d / "y"


def test_convert_writes_nothing_when_no_annotation_was_read(yolo: Path, tmp_path: Path) -> None:
    dst = tmp_path / "y.json"
    code, out, err = run_cli_streams(["convert", str(yolo), str(dst), "--from", "yolo", "--to", "coco",
                                      "--read-option", "task=obb"])
    assert code == 2, out + err
    assert not dst.exists()
    text = flat_text(err)
    assert "labels/train/" in text and "line 1" in text and "yolo_bad_columns" in text
    assert "no annotation could be read, so nothing was written" in text
    assert "yolo_bad_columns" in flat_text(out)  # the report table is shown first: every refused line
    # --json: stdout stays empty (no half result), the error on stderr
    code, out, err = run_cli_streams(["convert", str(yolo), str(tmp_path / "y2"), "--from", "yolo", "--to", "coco",
                                      "--read-option", "task=obb", "--json"])
    assert code == 2 and out == "" and "nothing was written" in flat_text(err)
    assert not (tmp_path / "y2").exists()


def test_import_adds_no_version_when_no_annotation_was_read(yolo: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli(["init"])[0] == 0
    code, out = run_cli(["import", str(yolo), "--from", "yolo", "--read-option", "task=obb", "--name", "y"])
    assert code == 2 and "nothing was written" in flat_text(out)
    code, out = run_cli(["log", "--json"])
    assert code == 2 and "no dataset" in flat_text(out)  # the workspace holds none
    code, out = run_cli(["import", str(yolo), "--from", "yolo", "--name", "y"])
    assert code == 0, out


def test_an_input_read_in_part_is_still_written(yolo: Path, tmp_path: Path) -> None:
    src = yolo.parent / "shapes" / "annotations.json"
    d = json.loads(src.read_text())
    d["annotations"][0]["category_id"] = 99  # one annotation refused, the others read
    bad = tmp_path / "one_bad.json"
    bad.write_text(json.dumps(d))
    code, out = run_cli(["convert", str(bad), str(tmp_path / "out.json"), "--from", "coco", "--to", "coco",
                         "--images-root", str(yolo.parent / "shapes"), "--json"])
    assert code == 0, out
    got = json.loads(out)
    assert got["report"]["n_errors"] >= 1 and (tmp_path / "out.json").is_file()
    assert io.read(tmp_path / "out.json", "coco").n_annotations == len(d["annotations"]) - 1


def test_an_input_without_annotations_is_not_refused(yolo: Path, tmp_path: Path) -> None:
    src = yolo.parent / "shapes" / "annotations.json"
    d = json.loads(src.read_text())
    d["annotations"] = []
    d["images"][0]["file_name"] = "images/not_there.png"  # an error about an image file only
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps(d))
    code, out = run_cli(["convert", str(empty), str(tmp_path / "out.json"), "--from", "coco", "--to", "coco",
                         "--images-root", str(yolo.parent / "shapes"), "--check-files", "--json"])
    assert code == 0, out
    got = json.loads(out)
    assert got["report"]["counts"].get("missing_image") == 1
    assert io.read(tmp_path / "out.json", "coco").n_annotations == 0


def test_an_input_without_annotations_and_an_image_record_error_is_not_refused(yolo: Path, tmp_path: Path) -> None:
    """A list of images with a repeated image id (an error about the images table): nothing was refused of its
    annotations (it had none), so it is written with its report as before, not "no annotation could be read"."""
    d = json.loads((yolo.parent / "shapes" / "annotations.json").read_text())
    d["annotations"] = []
    d["images"][1]["id"] = d["images"][0]["id"]
    src = tmp_path / "dup.json"
    src.write_text(json.dumps(d))
    code, out = run_cli(["convert", str(src), str(tmp_path / "out.json"), "--from", "coco", "--to", "coco",
                         "--images-root", str(yolo.parent / "shapes"), "--json"])
    assert code == 0, out
    assert json.loads(out)["report"]["counts"].get("coco_duplicate_image_id") == 1
    assert (tmp_path / "out.json").is_file()
