"""Audit 4, F3: the image-folder and IDX writers count the class ids and supercategories they can't hold (YOLO's
classify layout counts them once), and say what reading back does to the class order and names."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from maslow import Annotations, Dataset, Images, LabelSchema, io
from maslow.io import idx, imagefolder


def _ds(tmp_path: Path, names: list[str], labels: list[int], *, ids: bool = True) -> Dataset:
    """Greyscale 4x3 images, one per label; classes with ids 100.. and a supercategory when ``ids``."""
    paths = []
    for i in range(len(labels)):
        Image.new("L", (4, 3), 10 * i).save(tmp_path / f"im{i}.png")
        paths.append(f"im{i}.png")
    schema = LabelSchema.from_names(names, task="classification")
    if ids:
        schema = dataclasses.replace(schema, classes=tuple(
            dataclasses.replace(c, id=100 + k, supercategory="thing") for k, c in enumerate(schema.classes)))
    n = len(labels)
    return Dataset(schema=schema, images=Images(path=np.array(paths, object), width=np.full(n, 4, np.int64),
                                                height=np.full(n, 3, np.int64)),
                   annotations=Annotations(image=np.arange(n, dtype=np.int64), label=np.array(labels, np.int64)),
                   root=tmp_path)


def test_imagefolder_counts_class_ids_and_supercategories(tmp_path: Path) -> None:
    ds = _ds(tmp_path, ["a", "b", "c"], [0, 1, 2])
    rep = imagefolder.write(ds, tmp_path / "out")
    assert rep.lost["class_id"] == 3 and rep.lost["supercategory"] == 3 and not rep.lossless
    assert any("class ids are not written" in n and "'a' 100" in n for n in rep.notes)
    assert not any("sorted by name" in n for n in rep.notes)  # already in name order
    back = io.read_imagefolder(tmp_path / "out")
    assert [c.id for c in back.schema.classes] == [None] * 3 and not any(c.supercategory for c in back.schema.classes)


def test_imagefolder_without_ids_stays_lossless(tmp_path: Path) -> None:
    rep = imagefolder.write(_ds(tmp_path, ["a", "b"], [0, 1], ids=False), tmp_path / "out")
    assert rep.lossless and rep.notes == []


def test_imagefolder_notes_the_class_order_that_reading_changes(tmp_path: Path) -> None:
    ds = _ds(tmp_path, ["person", "bicycle", "car"], [0, 1, 2], ids=False)
    rep = imagefolder.write(ds, tmp_path / "out")
    (note,) = [n for n in rep.notes if "sorted by name" in n]
    assert "'person' 0 -> 2" in note and "'bicycle' 1 -> 0" in note and "of 3 classes" in note
    back = io.read_imagefolder(tmp_path / "out")
    assert back.schema.names == ("bicycle", "car", "person")  # what the note announces
    assert rep.lossless  # names and assignments are kept: a note, not a loss


def test_yolo_classify_counts_class_fields_once(tmp_path: Path) -> None:
    ds = _ds(tmp_path, ["a", "b", "c"], [0, 1, 2])
    ds = ds.replace(images=dataclasses.replace(ds.images, split=np.array(["train", "val", "val"], object)))
    rep = io.write_yolo(ds, tmp_path / "out", task="classify")
    assert rep.lost["class_id"] == 3 and rep.lost["supercategory"] == 3
    assert sum("class ids are not written (YOLO classify" in n for n in rep.notes) == 1
    assert sum("supercategories are not written" in n for n in rep.notes) == 1


def test_idx_counts_class_ids_supercategories_and_names(tmp_path: Path) -> None:
    names = [str(k) for k in range(10)]
    names[3] = "cat"
    ds = _ds(tmp_path, names, [0, 3, 9])
    rep = idx.write(ds, tmp_path / "out")
    assert rep.lost["class_id"] == 10 and rep.lost["supercategory"] == 10
    assert rep.lost["class_names"] == 1  # only 'cat' is read back under another name
    assert any("'cat' -> '3'" in n for n in rep.notes)
    assert "classes" not in rep.lost or rep.lost["classes"] == 0


def test_idx_counts_the_classes_reading_does_not_recreate(tmp_path: Path) -> None:
    names = [str(k) for k in range(12)]
    rep = idx.write(_ds(tmp_path, names, [0, 9], ids=False), tmp_path / "out")
    assert rep.lost["classes"] == 2 and any("'10' first" in n for n in rep.notes)
    assert len(io.read_mnist(tmp_path / "out").schema.classes) == 10  # what was counted


def test_idx_notes_more_classes_read_back(tmp_path: Path) -> None:
    rep = idx.write(_ds(tmp_path, ["0", "1", "2"], [0, 2], ids=False), tmp_path / "out")
    assert rep.lossless and any("reading back makes 10" in n for n in rep.notes)
    assert len(io.read_mnist(tmp_path / "out").schema.classes) == 10
