"""Classification image folders: golden folder, round trips, link modes, what can't be written, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow import Annotations, Dataset, FormatError, Images, LabelSchema, MaslowWarning, io
from maslow.io import imagefolder
from tests.helpers import assert_datasets_equal

GOLDEN = Path(__file__).parents[1] / "data" / "imagefolder"
FIELDS = ("path", "size", "split", "label")


def test_golden_reads_classes_splits_and_nested_images() -> None:
    ds, report = imagefolder.parse(GOLDEN)
    assert len(report) == 0
    assert ds.schema.names == ("cat", "dog") and ds.schema.task.value == "classification"
    assert ds.images.path.tolist() == ["train/cat/a.png", "train/cat/b.png", "train/dog/c.png", "val/cat/sub/e.png",
                                       "val/dog/d.png"]
    assert ds.images.split.tolist() == ["train", "train", "train", "val", "val"]
    assert ds.images.width.tolist() == [8, 8, 10, 6, 10] and ds.images.height.tolist() == [6, 6, 4, 6, 4]
    assert ds.annotations.image.tolist() == [0, 1, 2, 3, 4]
    assert [ds.schema.names[k] for k in ds.annotations.label] == ["cat", "cat", "dog", "cat", "dog"]
    assert np.isnan(ds.annotations.box).all()
    assert io.check_images(ds).counts() == {}


@pytest.mark.parametrize("link", ["copy", "hardlink", "symlink"])
def test_golden_round_trip(tmp_path: Path, link: str) -> None:
    ds = imagefolder.read_imagefolder(GOLDEN)
    rep = imagefolder.write(ds, tmp_path / "out", link=link)
    assert rep.lossless and rep.n_images == 5
    back = io.read(tmp_path / "out", "folder")
    flat = ds.images.path.tolist()
    flat[3] = "val/cat/e.png"  # class folders are written flat
    assert back.images.path.tolist() == sorted(flat)
    assert_datasets_equal(ds.replace(images=Images(path=flat, width=ds.images.width, height=ds.images.height,
                                                   split=ds.images.split)), back, fields=FIELDS)
    written = tmp_path / "out/train/cat/a.png"
    assert written.is_symlink() == (link == "symlink")
    if link == "hardlink":
        assert os.stat(written).st_nlink >= 2


def test_no_split_layout_and_unlabelled_images(tmp_path: Path) -> None:
    root = tmp_path / "flowers"
    for name, cls in (("a.png", "rose"), ("b.jpg", "tulip")):
        (root / cls).mkdir(parents=True)
        Image.new("RGB", (5, 4)).save(root / cls / name)
    Image.new("RGB", (3, 3)).save(root / "loose.png")
    (root / "README.txt").write_text("not an image")
    (root / "rose" / ".DS_Store").write_bytes(b"\0")
    (root / "empty_class").mkdir()
    ds, report = imagefolder.parse(root)
    assert ds.schema.names == ("empty_class", "rose", "tulip")
    assert ds.images.split.tolist() == ["", "", ""]
    assert ds.images.path.tolist() == ["loose.png", "rose/a.png", "tulip/b.jpg"]
    assert ds.annotations.image.tolist() == [1, 2]  # loose.png has no class
    assert report.counts() == {"imagefolder_no_class": 1, "imagefolder_not_image": 1}
    assert report.of_type("imagefolder_no_class")[0].file == "loose.png"
    with pytest.warns(MaslowWarning, match="imagefolder_no_class"):
        imagefolder.read_imagefolder(root)
    rep = imagefolder.write(ds, tmp_path / "out")
    assert rep.lost["images_without_label"] == 1 and rep.n_images == 2
    assert (tmp_path / "out/empty_class").is_dir()  # classes without images are kept as empty folders
    assert not (tmp_path / "out/train").exists()


def test_write_counts_multilabel_and_geometry(shapes_on_disk: Dataset, tmp_path: Path) -> None:
    ds = shapes_on_disk
    rep = imagefolder.write(ds, tmp_path / "out")
    slices = ds.image_slices()
    n_distinct = [len(set(ds.annotations.label[slices[i]:slices[i + 1]].tolist())) for i in range(ds.n_images)]
    assert rep.lost["images_without_label"] == n_distinct.count(0) > 0
    assert rep.lost["images_with_several_labels"] == sum(n > 1 for n in n_distinct) > 0
    assert rep.n_images == n_distinct.count(1)
    assert rep.lost["box"] == rep.n_images  # the one written annotation per image loses its box
    back = imagefolder.read_imagefolder(tmp_path / "out")
    assert back.n_images == rep.n_images and set(back.images.split.tolist()) <= {"train", "val"}


def test_unreadable_image_is_reported(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "broken.png").write_bytes(b"not a png")
    ds, report = imagefolder.parse(tmp_path)
    assert report.counts() == {"unreadable_image": 1} and report.issues[0].severity == "error"
    assert ds.n_annotations == 1 and ds.images.width.tolist() == [0]


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="must be a folder"):
        imagefolder.parse(tmp_path / "missing")
    ds = Dataset(schema=LabelSchema.from_names(["a/b"], task="classification"),
                 images=Images(path=["x.png"], width=[1], height=[1]),
                 annotations=Annotations(image=[0], label=[0]))
    with pytest.raises(FormatError, match="folder names, got 'a/b'"):
        imagefolder.write(ds, tmp_path / "out")
    with pytest.raises(FormatError, match="link must be one of"):
        imagefolder.write(ds, tmp_path / "out", link="move")
    with pytest.raises(FormatError, match="images_root must be the folder itself"):
        imagefolder.parse(GOLDEN, images_root=tmp_path)


# -- found by fuzzing ------------------------------------------------------------------------------------------
def _classified(tmp_path: Path, names: list[str], splits: list[str], paths: list[str] | None = None) -> Dataset:
    paths = paths or [f"img {k}.png" for k in range(len(splits))]
    (tmp_path / "src").mkdir(exist_ok=True)
    for p in paths:
        Image.new("RGB", (3, 2)).save(tmp_path / "src" / p, format="PNG")
    return Dataset(schema=LabelSchema.from_names(names, task="classification"),
                   images=Images(path=paths, width=[3] * len(paths), height=[2] * len(paths), split=splits),
                   annotations=Annotations(image=range(len(paths)), label=[k % len(names) for k in range(len(paths))]),
                   root=tmp_path / "src")


def test_a_symlink_loop_is_read_once(tmp_path: Path) -> None:
    """os.walk(followlinks=True) followed cat/deep/loop -> cat 40 levels deep: 40 copies of one image."""
    (tmp_path / "cat" / "deep").mkdir(parents=True)
    Image.new("RGB", (3, 2)).save(tmp_path / "cat" / "a.png")
    os.symlink(tmp_path / "cat", tmp_path / "cat" / "deep" / "loop")
    (tmp_path / "dog").mkdir()
    os.symlink(tmp_path / "cat" / "a.png", tmp_path / "dog" / "ü link.png")
    os.symlink(tmp_path / "cat", tmp_path / "lion")  # a linked class folder is a class
    ds, report = imagefolder.parse(tmp_path)
    assert ds.images.path.tolist() == ["cat/a.png", "dog/ü link.png", "lion/a.png"] and len(report) == 0
    assert ds.schema.names == ("cat", "dog", "lion")


def test_write_refuses_what_would_read_back_differently(tmp_path: Path) -> None:
    ds = _classified(tmp_path, [".hidden", "b"], ["", ""])  # a hidden class folder is skipped on reading
    with pytest.raises(FormatError, match=r"folder names, got '\.hidden'"):
        imagefolder.write(ds, tmp_path / "out")
    ds = _classified(tmp_path, ["a b", "ü"], ["dev", "train"])  # 'dev/' and 'train/' read back as classes
    with pytest.raises(FormatError, match=r"split folders must be named train, val.*got 'dev'.*splits=False"):
        imagefolder.write(ds, tmp_path / "out")
    assert imagefolder.write(ds, tmp_path / "out", splits=False).lossless
    ds = _classified(tmp_path, ["train", "test"], ["", ""])  # class folders read back as split folders
    with pytest.raises(FormatError, match=r"read back as split folders; pass splits=True"):
        imagefolder.write(ds, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()
    imagefolder.write(ds, tmp_path / "out2", splits=True)
    back = imagefolder.read_imagefolder(tmp_path / "out2")
    assert back.schema.names == ("test", "train") and back.images.split.tolist() == ["train", "train"]


def test_round_trip_with_splits_nested_unicode_and_empty_classes(tmp_path: Path) -> None:
    ds = _classified(tmp_path, ["big dog", "漢字", "empty"], ["val", "train", "test", "val"],
                     ["a b.png", "ü.png", "x#y%.png", "c.jpg"])
    ds = ds.replace(annotations=Annotations(image=[0, 1, 2, 3], label=[0, 1, 1, 0]))
    rep = imagefolder.write(ds, tmp_path / "out")
    assert rep.lossless and rep.n_images == 4
    back, report = imagefolder.parse(tmp_path / "out")
    assert len(report) == 0 and back.schema.names == ("big dog", "empty", "漢字")
    assert (tmp_path / "out" / "test" / "empty").is_dir()
    assert back.images.path.tolist() == ["test/漢字/x#y%.png", "train/漢字/ü.png", "val/big dog/a b.png",
                                         "val/big dog/c.jpg"]


def test_class_folders_are_written_when_no_image_has_a_label(tmp_path: Path) -> None:
    """With splits and no labelled image, no class folder was written: the classes were lost."""
    ds = _classified(tmp_path, ["a", "b"], ["val"]).replace(annotations=Annotations.empty())
    rep = imagefolder.write(ds, tmp_path / "out")
    assert rep.lost["images_without_label"] == 1
    assert imagefolder.read_imagefolder(tmp_path / "out").schema.names == ("a", "b")


def test_names_that_reading_skips_are_counted(tmp_path: Path) -> None:
    ds = _classified(tmp_path, ["k"], ["", "", ""], [".h.png", "a.png", "c.txt"])
    rep = imagefolder.write(ds, tmp_path / "out")
    assert rep.n_images == 3 and rep.lost["image_names"] == 2 and "['.h.png', 'c.txt']" in rep.notes[0]
    back, report = imagefolder.parse(tmp_path / "out")
    assert back.images.path.tolist() == ["k/a.png"] and report.counts() == {"imagefolder_not_image": 1}
