"""YOLO import issues that name where they are: negative box sizes, images listed twice, label files without an
image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow import io
from maslow.io import yolo


def _png(path: Path, w: int = 10, h: int = 10) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (w, h), 128).save(path)


def _one_file(tmp_path: Path, text: str, yaml: str = "train: images/train\nnames: [a]\n") -> Path:
    _png(tmp_path / "images/train/a.png", 10, 20)
    (tmp_path / "labels/train").mkdir(parents=True)
    (tmp_path / "labels/train/a.txt").write_text(text)
    (tmp_path / "data.yaml").write_text(yaml)
    return tmp_path


# -- negative width or height --------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "yaml", "bad"), [
    pytest.param("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 -0.2 0.4\n0 0.5 0.5 0.2 -0.4\n", "", [(2, "w", "-0.2"), (3, "h", "-0.4")],
                 id="detect"),
    pytest.param("0 0.5 0.5 0.2 0.2 0.9\n0 0.5 0.5 -0.2 0.4 0.8\n", "", [(2, "w", "-0.2")], id="scored"),
    pytest.param("0 0.5 0.5 0.2 0.2 0.1 0.2 2\n0 0.5 0.5 0.2 -0.1 0.1 0.2 2\n", "kpt_shape: [1, 3]\n",
                 [(2, "h", "-0.1")], id="pose"),
])
def test_a_negative_box_size_is_an_error_and_the_line_is_not_imported(tmp_path: Path, text: str, yaml: str,
                                                                      bad: list[tuple[int, str, str]]) -> None:
    """A negative w or h used to be read as its absolute value, with only a warning that coordinates lie
    outside [0, 1]."""
    root = _one_file(tmp_path, text, f"train: images/train\nnames: [a]\n{yaml}")
    ds, report = yolo.parse(root)
    found = report.of_type("yolo_bad_value")
    assert [(i.record, i.field, i.severity) for i in found] == [(f"line {n}", f, "error") for n, f, _ in bad]
    for issue, (_, f, v) in zip(found, bad, strict=True):
        assert issue.file is not None and issue.file.endswith("a.txt") and issue.image == 0
        assert f"box {'width' if f == 'w' else 'height'} {f} must be >= 0, got '{v}'; line not imported" in issue.message
    assert not report.of_type("yolo_not_normalized")  # said once, as what it is
    assert ds.n_annotations == 1  # the good line only: the others are not turned into boxes
    np.testing.assert_allclose(ds.annotations.box, [[4, 8, 6, 12]])


def test_a_negative_polygon_coordinate_is_still_only_outside_zero_one(tmp_path: Path) -> None:
    """A segment has no size values: its negative coordinates are the not-normalized warning, as before."""
    root = _one_file(tmp_path, "0 -0.1 0.1 0.5 0.1 0.5 0.5\n")
    ds, report = yolo.parse(root)
    assert report.counts() == {"yolo_not_normalized": 1} and ds.n_annotations == 1


def test_a_negative_size_in_strict_mode_names_file_line_and_field(tmp_path: Path) -> None:
    from maslow import FormatError

    root = _one_file(tmp_path, "0 0.5 0.5 0.2 -0.2\n")
    with pytest.raises(FormatError, match=r"a\.txt.*line 1.*box height h must be >= 0"):
        yolo.parse(root, strict=True)


# -- an image listed twice -----------------------------------------------------------------------------
def _listed_twice(root: Path) -> Path:
    _png(root / "images/train/a.png")
    _png(root / "images/train/b.png")
    (root / "labels/train").mkdir(parents=True)
    (root / "labels/train/a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "train.txt").write_text("images/train/a.png\nimages/train/b.png\n")
    (root / "val.txt").write_text("images/train/b.png\n\nimages/train/a.png\n")
    (root / "data.yaml").write_text("train: train.txt\nval: val.txt\nnames: [a]\n")
    return root


def test_an_image_listed_twice_names_both_lists_and_the_label_file(tmp_path: Path) -> None:
    """The finding used to say only "image is listed in split 'train' and again in 'val'": neither the image nor
    the list it was found in first."""
    ds, report = yolo.parse(_listed_twice(tmp_path))
    first, second = report.of_type("duplicate_image")
    assert (first.file, first.record, first.image) == (str(tmp_path / "val.txt"), "line 1", 1)
    assert first.message == (f"image 'images/train/b.png' is listed in split 'val' ({tmp_path / 'val.txt'}, line 1) "
                             f"and already in 'train' ({tmp_path / 'train.txt'}, line 2); kept in 'train' (image row "
                             f"1), without a label file ({tmp_path / 'labels/train/b.txt'})")
    assert (second.file, second.record, second.image) == (str(tmp_path / "val.txt"), "line 3", 0)
    assert "image 'images/train/a.png'" in second.message
    assert f"its label file {tmp_path / 'labels/train/a.txt'} read once" in second.message
    assert ds.images.split.tolist() == ["train", "train"] and ds.annotations.image.tolist() == [0]


def test_an_image_in_two_split_folders_names_the_folders(tmp_path: Path) -> None:
    root = _listed_twice(tmp_path)
    (root / "data.yaml").write_text("train: images\nval: images/train\nnames: [a]\n")  # val is inside train
    ds, report = yolo.parse(root)
    found = report.of_type("duplicate_image")
    assert [(Path(i.file or "").as_posix(), i.record, i.image) for i in found] == [
        ((root / "images/train").as_posix(), None, 0), ((root / "images/train").as_posix(), None, 1)]
    assert (f"image 'images/train/a.png' is listed in split 'val' (folder {root / 'images/train'}) and already in "
            f"'train' (folder {root / 'images'})") in found[0].message
    assert ds.n_images == 2 and ds.n_annotations == 1


# -- a label file without its image ------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["folders", "lists"])
def test_a_label_file_without_its_image_is_reported_with_its_annotations(tmp_path: Path, layout: str) -> None:
    """Not skipped: the label file is named (missing_image, an error) and each of its lines too (unplaced: the
    normalised coordinates need the image size); with image_size= they are kept. COCO and VOC keep such
    annotations (their files carry the image size) and report the missing file (missing_image) as well."""
    _png(tmp_path / "images/train/a.png")
    (tmp_path / "labels/train").mkdir(parents=True)
    (tmp_path / "labels/train/a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "labels/train/gone.txt").write_text("0 0.5 0.5 0.2 0.2\n0 0.2 0.2 0.1 0.1\n")
    if layout == "lists":
        (tmp_path / "train.txt").write_text("images/train/a.png\nimages/train/gone.png\n")
    (tmp_path / "data.yaml").write_text(f"train: {'train.txt' if layout == 'lists' else 'images/train'}\n"
                                        "names: [a]\n")
    imported = io.import_dataset(tmp_path, "yolo")
    report = imported.report
    (missing,) = report.of_type("missing_image")
    assert missing.severity == "error" and Path(missing.file or "").name == "gone.txt" and missing.image == 1
    unplaced = report.of_type("unplaced_annotation")
    assert [(Path(i.file or "").name, i.record) for i in unplaced] == [("gone.txt", "line 1"), ("gone.txt", "line 2")]
    assert imported.dataset.n_images == 2 and imported.dataset.n_annotations == 1
    placed, rep = yolo.parse(tmp_path, image_size=(10, 10))
    assert rep.counts() == {"missing_image": 1} and placed.annotations.image.tolist() == [0, 1, 1]
