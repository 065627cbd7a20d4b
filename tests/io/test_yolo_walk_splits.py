"""A YOLO split folder that reaches another split's images through a link: each image file is read into one split
(the one whose own folder holds it), and the link is reported. The splits were walked one by one, so
``images/train/extra -> ../val`` listed val's images in train too (under other paths: nothing noticed), and the model
would be validated on images it trained on."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.io import yolo

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="needs symbolic links")


def _png(path: Path, w: int = 20, h: int = 10) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (w, h)).save(path, format="PNG")


def _text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _dataset(root: Path) -> Path:
    """train: a.png (class 0); val: b.png and cam/c.png (class 1); each with its label file."""
    _png(root / "images" / "train" / "a.png")
    _text(root / "labels" / "train" / "a.txt", "0 0.5 0.5 0.2 0.2\n")
    for rel in ("b", "cam/c"):
        _png(root / "images" / "val" / f"{rel}.png")
        _text(root / "labels" / "val" / f"{rel}.txt", "1 0.5 0.5 0.2 0.2\n")
    _text(root / "data.yaml", "train: images/train\nval: images/val\nnames: [a, b]\n")
    return root


def _rows(ds: object) -> list[tuple[str, str]]:
    return list(zip(ds.images.path.tolist(), ds.images.split.tolist(), strict=True))  # type: ignore[attr-defined]


_PLAIN = [("images/train/a.png", "train"), ("images/val/b.png", "val"), ("images/val/cam/c.png", "val")]


@pytest.mark.parametrize("target", ["../val", "../val/cam"])
def test_a_train_folder_linking_into_val_leaves_the_val_images_in_val(tmp_path: Path, target: str) -> None:
    root = _dataset(tmp_path / "d")
    want, want_report = yolo.parse(root)
    assert _rows(want) == _PLAIN and len(want_report) == 0
    for kind in ("images", "labels"):  # the labels linked alike, as a copied layout has them
        os.symlink(target, root / kind / "train" / "extra")
    ds, report = yolo.parse(root)
    assert _rows(ds) == _PLAIN  # was also images/train/extra/b.png, images/train/extra/cam/c.png in train
    assert ds.annotations.image.tolist() == [0, 1, 2] and ds.annotations.label.tolist() == [0, 1, 1]
    links = [i for i in report if i.type == "yolo_split_link"]
    assert len(links) == 1 and len(report) == 1  # said once for the link, not once per image
    issue = links[0]
    assert issue.severity == "warning" and issue.file == str(root / "images" / "train" / "extra")
    n = 2 if target == "../val" else 1
    assert f"images/train/extra (split 'train') is a link to images/val{'/cam' if n == 1 else ''}, in split 'val'" \
        in issue.message
    assert f"{n} image file" in issue.message and "kept in split 'val' only" in issue.message
    assert "not also in 'train'" in issue.message


def test_image_files_that_are_links_into_a_cache_stay_in_their_own_split(tmp_path: Path) -> None:
    # DVC and similar tools make every image file a link into a cache: a row being a link says nothing of its
    # split, so val's image reached through train/extra must still stay in val (it was kept in train, val emptied)
    cache, root = tmp_path / "cache", tmp_path / "d"
    for split, name, label in (("train", "a", 0), ("val", "b", 1)):
        _png(cache / f"h{label}")
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        os.symlink(cache / f"h{label}", root / "images" / split / f"{name}.png")
        _text(root / "labels" / split / f"{name}.txt", f"{label} 0.5 0.5 0.2 0.2\n")
    _text(root / "data.yaml", "train: images/train\nval: images/val\nnames: [a, b]\n")
    for kind in ("images", "labels"):
        os.symlink("../val", root / kind / "train" / "extra")
    ds, report = yolo.parse(root)
    assert _rows(ds) == [("images/train/a.png", "train"), ("images/val/b.png", "val")]
    assert ds.annotations.label.tolist() == [0, 1]
    (issue,) = [i for i in report if i.type == "yolo_split_link"]
    assert "images/train/extra (split 'train') is a link to images/val, in split 'val'" in issue.message


def test_a_val_folder_linking_into_train_leaves_the_train_images_in_train(tmp_path: Path) -> None:
    """The split listed later owns the folder: the link is skipped whichever split is read first."""
    root = _dataset(tmp_path / "d")
    os.symlink("../train", root / "images" / "val" / "more")
    ds, report = yolo.parse(root)
    assert _rows(ds) == _PLAIN
    assert [(i.type, i.file) for i in report] == [("yolo_split_link", str(root / "images" / "val" / "more"))]
    assert "(split 'val') is a link to images/train, in split 'train'" in report.issues[0].message
    assert report.issues[0].image == 0  # the row kept: images/train/a.png


@pytest.mark.parametrize("relative", [False, True])
def test_a_linked_image_file_into_another_split_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            relative: bool) -> None:
    root = _dataset(tmp_path / "d")
    os.symlink("../val/b.png", root / "images" / "train" / "b.png")
    if relative:  # the dataset named relative to the working folder
        monkeypatch.chdir(tmp_path)
        root = Path("d")
    ds, report = yolo.parse(root)
    assert _rows(ds) == _PLAIN
    assert [(i.type, i.file) for i in report] == [("yolo_split_link", str(root / "images" / "train" / "b.png"))]
    assert "images/train/b.png (split 'train') is a link to images/val/b.png, in split 'val'" in report.issues[0].message


def test_links_into_a_shared_store_stay_separate_images(tmp_path: Path) -> None:
    """Two splits' files linking to one file elsewhere (DVC's content-addressed cache: two equal images) are two
    images, one per split: no split's folder holds that file."""
    root = _dataset(tmp_path / "d")
    _png(tmp_path / "cache" / "ab12")
    os.symlink(tmp_path / "cache" / "ab12", root / "images" / "train" / "t.png")
    os.symlink(tmp_path / "cache" / "ab12", root / "images" / "val" / "v.png")
    ds, report = yolo.parse(root)
    assert sorted(_rows(ds)) == sorted([*_PLAIN, ("images/train/t.png", "train"), ("images/val/v.png", "val")])
    assert not [i for i in report if i.type == "yolo_split_link"]


def test_two_splits_linking_one_folder_elsewhere_keep_it_in_the_first(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d")
    _png(tmp_path / "pool" / "p.png")
    os.symlink(tmp_path / "pool", root / "images" / "train" / "pool")
    os.symlink(tmp_path / "pool", root / "images" / "val" / "pool")
    ds, report = yolo.parse(root)
    assert _rows(ds).count(("images/train/pool/p.png", "train")) == 1
    assert ("images/val/pool/p.png", "val") not in _rows(ds)
    assert [(i.type, i.file) for i in report] == [("yolo_split_link", str(root / "images" / "val" / "pool"))]


def test_label_files_under_the_link_are_read_or_named(tmp_path: Path) -> None:
    """The labels under the linked path are other files (the labels side is no link): an image kept without a
    label file gets them; one with its own label file keeps it, and the other is named as not read (an error)."""
    root = _dataset(tmp_path / "d")
    (root / "labels" / "val" / "cam" / "c.txt").unlink()  # val's c has no labels: train's path has them
    os.symlink("../val", root / "images" / "train" / "extra")
    _text(root / "labels" / "train" / "extra" / "b.txt", "0 0.1 0.1 0.1 0.1\n")
    _text(root / "labels" / "train" / "extra" / "cam" / "c.txt", "0 0.3 0.3 0.1 0.1\n")
    ds, report = yolo.parse(root)
    assert _rows(ds) == _PLAIN
    assert ds.annotations.image.tolist() == [0, 1, 2] and ds.annotations.label.tolist() == [0, 1, 0]
    assert ds.annotations.box is not None  # train/extra/cam/c.txt, on the val row:
    np.testing.assert_allclose(ds.annotations.box[2], np.array([5, 2.5, 7, 3.5]))
    [issue] = report.issues
    assert issue.type == "yolo_split_link" and issue.severity == "error"
    assert f"1 label file of the left-out paths, other than the kept images' own, was not read (first: " \
           f"{root / 'labels' / 'train' / 'extra' / 'b.txt'})" in issue.message


def test_txt_lists_reaching_one_file_by_two_paths(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d")
    os.symlink("../val", root / "images" / "train" / "extra")
    _text(root / "train.txt", "images/train/a.png\nimages/train/extra/b.png\n")
    _text(root / "val.txt", "images/val/b.png\nimages/val/cam/c.png\n")
    _text(root / "data.yaml", "train: train.txt\nval: val.txt\nnames: [a, b]\n")
    ds, report = yolo.parse(root)
    assert _rows(ds) == _PLAIN
    assert [(i.type, i.file) for i in report] == [("yolo_split_link", str(root / "images" / "train" / "extra"))]


def test_a_duplicate_listing_names_its_row_after_rows_left_out(tmp_path: Path) -> None:
    """duplicate_image names the row kept; rows left out before it move it up."""
    root = _dataset(tmp_path / "d")
    os.symlink("../val", root / "images" / "train" / "extra")
    _text(root / "train.txt", "images/train/extra/b.png\nimages/train/a.png\n")
    _text(root / "val.txt", "images/val/b.png\nimages/train/a.png\n")
    _text(root / "data.yaml", "train: train.txt\nval: val.txt\nnames: [a, b]\n")
    ds, report = yolo.parse(root)
    # (cam/c.png is read from its label file: val.txt does not list it)
    assert _rows(ds) == [("images/train/a.png", "train"), ("images/val/b.png", "val"), ("images/val/cam/c.png", "val")]
    dup = [i for i in report if i.type == "duplicate_image"]
    assert len(dup) == 1 and dup[0].image == 0  # images/train/a.png: row 1 as listed, row 0 once extra/b.png left


def test_one_split_reads_linked_folders_as_before(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d")
    os.symlink("cam", root / "images" / "val" / "cam2")  # one split, one real folder: the walk reads it once
    ds, report = yolo.parse(root)
    assert _rows(ds) == _PLAIN and len(report) == 0


def test_a_split_folder_that_is_a_link_to_another_split_folder(tmp_path: Path) -> None:
    """``images/val -> train`` (a writer without a val split) reads as ``val: images/train`` does: once, in train."""
    root = tmp_path / "d"
    _png(root / "images" / "train" / "a.png")
    _text(root / "labels" / "train" / "a.txt", "0 0.5 0.5 0.2 0.2\n")
    for kind in ("images", "labels"):
        os.symlink("train", root / kind / "val")
    _text(root / "data.yaml", "train: images/train\nval: images/val\nnames: [a, b]\n")
    ds, report = yolo.parse(root)
    assert _rows(ds) == [("images/train/a.png", "train")] and ds.n_annotations == 1
    assert [(i.type, i.file) for i in report] == [("yolo_split_link", str(root / "images" / "val"))]
    assert "images/val (split 'val') is a link to images/train, in split 'train'" in report.issues[0].message


def test_a_split_folder_on_another_disk_keeps_its_images(tmp_path: Path) -> None:
    """``images/val`` a link to the real val folder elsewhere is val's own: train's link into it is the one skipped."""
    root = tmp_path / "d"
    _png(root / "images" / "train" / "a.png")
    _png(tmp_path / "disk2" / "val" / "b.png")
    os.symlink(tmp_path / "disk2" / "val", root / "images" / "val")
    os.symlink(tmp_path / "disk2" / "val", root / "images" / "train" / "extra")
    _text(root / "data.yaml", "train: images/train\nval: images/val\nnames: [a, b]\n")
    ds, report = yolo.parse(root)
    assert _rows(ds) == [("images/train/a.png", "train"), ("images/val/b.png", "val")]
    assert [(i.type, i.file) for i in report] == [("yolo_split_link", str(root / "images" / "train" / "extra"))]
