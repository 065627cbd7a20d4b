"""Two image records under one path (COCO allows it: a file listed twice) are two images in every per-image
writer: their label files took one name, so the second record's labels replaced the first's while the report
said both were written."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.io import voc
from maslow.io._export import output_names


def test_the_same_path_again_gets_a_name_of_its_own() -> None:
    names = output_names(["a.jpg", "x/b.jpg", "a.jpg", "a__2.jpg", "a.jpg"])
    assert len(set(names)) == 5
    assert names[:2] == ["a.jpg", "b.jpg"] and names[3] == "a__2.jpg"  # a real a__2 keeps its name
    assert all(n.endswith(".jpg") for n in names)


def _twice(tmp_path: Path) -> Dataset:
    return Dataset(LabelSchema.from_names(["cat", "dog"]),
                   Images(path=obj_array(["a.jpg", "a.jpg"]), width=np.array([40, 40]), height=np.array([30, 30])),
                   Annotations(image=np.array([0, 1]), label=np.array([0, 1]),
                               box=np.array([[1.0, 2.0, 11.0, 12.0], [5.0, 5.0, 25.0, 20.0]])), root=tmp_path)


def test_voc_keeps_both_records(tmp_path: Path) -> None:
    ds = _twice(tmp_path)
    rep = io.write(ds, tmp_path / "voc", "voc", images=False)
    assert sorted(p.name for p in (tmp_path / "voc" / "Annotations").iterdir()) == ["a.xml", "a__2.xml"]
    back, report = voc.parse(tmp_path / "voc")
    assert report.counts() == {"voc_filename_mismatch": 1}  # a__2.xml names a.jpg: said, not an error
    assert (rep.n_images, back.n_images, back.n_annotations) == (2, 2, 2)
    assert sorted(back.schema.names[k] for k in back.annotations.label) == ["cat", "dog"]
    assert sorted(map(tuple, back.annotations.box.tolist())) == sorted(map(tuple, ds.annotations.box.tolist()))


def test_yolo_keeps_both_label_files(tmp_path: Path) -> None:
    io.write(_twice(tmp_path), tmp_path / "yolo", "yolo", images=False)
    files = sorted((tmp_path / "yolo" / "labels" / "train").iterdir())
    assert [p.name for p in files] == ["a.txt", "a__2.txt"]
    assert [p.read_text().split()[0] for p in files] == ["0", "1"]


def test_a_repeated_path_is_reported_without_opening_files(tmp_path: Path) -> None:
    """convert and import --no-check-files skipped the file checks, and with them the one that names a path
    listed twice: the loss above happened without a word."""
    io.write_coco(_twice(tmp_path), tmp_path / "twice.json")
    imp = io.import_dataset(tmp_path / "twice.json", "coco", check_files=False)
    dup = imp.report.of_type("duplicate_image")
    assert len(dup) == 1 and dup[0].image == 1 and "repeats image row 0" in dup[0].message
    assert dup[0].severity == "warning" and imp.dataset.n_images == 2
    checked = io.import_dataset(tmp_path / "twice.json", "coco", check_files=True)
    assert len(checked.report.of_type("duplicate_image")) == 1  # once, not once per check
