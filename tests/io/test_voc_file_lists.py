"""Pascal VOC: a file's ``<path>`` and the root's ``ImageSets/Main/trainval.txt`` come back from a round trip
(they were dropped while the export said lossless), and a trainval.txt that is not train + val is reported.

Layout (public): the VOC2012 devkit's ``ImageSets/Main`` holds ``train.txt``, ``val.txt`` and ``trainval.txt``
(their union); LabelImg writes ``<folder>``, ``<filename>``, ``<path>``, ``<source>``, ``<size>``, ``<segmented>``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.io import voc
from tests.conftest import shared_path


def _root(tmp_path: Path, *, paths: bool = True, trainval: str = "a\nb\nc\n") -> Path:
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for stem in "abc":
        path = f"<path>/home/me/photos/{stem}.png</path>" if paths and stem != "c" else ""
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><folder>photos</folder><filename>{stem}.png</filename>{path}<size><width>10</width>"
            "<height>8</height><depth>3</depth></size><object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
            "<xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>")
        Image.new("RGB", (10, 8)).save(root / "JPEGImages" / f"{stem}.png")
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "train.txt").write_text("a\nb\n")
    (main / "val.txt").write_text("c\n")
    (main / "trainval.txt").write_text(trainval)
    return root


def _lists(root: Path) -> dict[str, list[str]]:
    return {p.name: p.read_text().split() for p in sorted((root / "ImageSets" / "Main").glob("*.txt"))}


def test_path_and_trainval_come_back(tmp_path: Path) -> None:
    ds, report = voc.parse(_root(tmp_path))
    assert len(report) == 0
    assert ds.images.extra["voc_path"].tolist() == ["/home/me/photos/a.png", "/home/me/photos/b.png", None]
    assert ds.info["voc"] == {"trainval": True}
    rep = voc.write(ds, tmp_path / "out", images=False)
    assert rep.lossless, rep.lost
    assert _lists(tmp_path / "out") == {"train.txt": ["a", "b"], "trainval.txt": ["a", "b", "c"], "val.txt": ["c"]}
    text = (tmp_path / "out" / "Annotations" / "a.xml").read_text()
    assert "<filename>a.png</filename>\n\t<path>/home/me/photos/a.png</path>\n\t<size>" in text  # LabelImg's order
    assert "<path>" not in (tmp_path / "out" / "Annotations" / "c.xml").read_text()
    back, _ = voc.parse(tmp_path / "out", images_root=tmp_path / "voc" / "JPEGImages")
    assert back.images.extra["voc_path"].tolist() == ds.images.extra["voc_path"].tolist()
    assert back.info["voc"] == {"trainval": True}


def test_trainval_follows_the_splits_written(tmp_path: Path) -> None:
    ds, _ = voc.parse(_root(tmp_path, paths=False))
    assert "voc_path" not in ds.images.extra
    ds = ds.replace(images=dataclasses.replace(ds.images, split=obj_array(["train", "test", "val"])))
    voc.write(ds, tmp_path / "out", images=False)
    assert _lists(tmp_path / "out")["trainval.txt"] == ["a", "c"]


def test_a_trainval_that_is_not_train_and_val_is_reported(tmp_path: Path) -> None:
    ds, report = voc.parse(_root(tmp_path, trainval="a\nx\n"))
    (issue,) = report.of_type("voc_trainval")
    assert "1 others and 2 missing" in issue.message and issue.file.endswith("trainval.txt")
    assert "voc" not in ds.info
    voc.write(ds, tmp_path / "out", images=False)
    assert "trainval.txt" not in _lists(tmp_path / "out")  # not made up


def test_a_dataset_from_elsewhere_gets_no_trainval(tmp_path: Path) -> None:
    ds = Dataset(schema=LabelSchema.from_names(["cat"]),
                 images=Images(path=obj_array(["a.png", "b.png"]), width=np.full(2, 10), height=np.full(2, 8),
                               split=obj_array(["train", "val"])),
                 annotations=Annotations(image=np.zeros(1, np.int64), label=np.zeros(1, np.int64),
                                         box=np.asarray([[0.0, 0, 4, 4]])))
    voc.write(ds, tmp_path / "out", images=False)
    assert sorted(_lists(tmp_path / "out")) == ["train.txt", "val.txt"]


def test_a_path_voc_cannot_hold_is_counted(tmp_path: Path) -> None:
    ds, _ = voc.parse(_root(tmp_path))
    bad = obj_array([" padded ", 3, None])
    ds = ds.replace(images=dataclasses.replace(ds.images, extra={**ds.images.extra, "voc_path": bad}))
    rep = voc.write(ds, tmp_path / "out", images=False)
    assert rep.lost["images.extra.voc_path"] == 2


def test_bccd_round_trip_keeps_its_lists_and_paths(tmp_path: Path) -> None:
    src = shared_path("bccd", "annotations")
    ds, _ = voc.parse(src)
    rep = voc.write(ds, tmp_path / "out", images=False)
    assert rep.lossless, rep.lost
    for name, ids in _lists(src).items():
        assert sorted(_lists(tmp_path / "out")[name]) == sorted(ids), name
    back, _ = voc.parse(tmp_path / "out", images_root=ds.root)
    assert back.images.extra["voc_path"].tolist() == ds.images.extra["voc_path"].tolist()
