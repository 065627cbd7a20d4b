"""Open Images: class names with spaces around them (audit 19, finding 2). The reader strips the MIDs of the
boxes and image-level labels CSVs as it strips those of the class descriptions, and the writer writes MIDs
without the spaces (the class name stays the display name), so no box is refused on read-back."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from maslow import Annotations, Dataset, Images, LabelSchema, io
from maslow.io.openimages import parse
from maslow.io.openimages_results import read_openimages_results, write_openimages_results

NAMES = [" lead", "tail ", "a", " a", "  "]


def _dataset() -> Dataset:
    n = len(NAMES)
    box = np.array([[1.0 + k, 2.0, 5.0 + k, 8.0] for k in range(n)])
    return Dataset(schema=LabelSchema.from_names(NAMES),
                   images=Images(path=["x.png", "y.png"], width=[20, 20], height=[10, 10]),
                   annotations=Annotations(image=[0, 0, 1, 1, 1], label=np.arange(n), box=box))


def test_padded_class_names_round_trip(tmp_path: Path) -> None:
    ds = _dataset()
    rep = io.write(ds, tmp_path / "out", "openimages", images=False)
    assert "annotations" not in rep.lost and rep.n_annotations == 5
    with open(tmp_path / "out" / "class-descriptions-boxable.csv", newline="") as f:
        desc = list(csv.reader(f))
    mids = [m for m, _ in desc]
    assert [d for _, d in desc] == NAMES  # the names, as they are, are the display names
    assert mids == [m.strip() for m in mids] and len(set(mids)) == 5 and all(mids)
    with open(tmp_path / "out" / "annotations-bbox.csv", newline="") as f:
        assert {r["LabelName"] for r in csv.DictReader(f)} == set(mids)  # the same MIDs in both files
    back, report = parse(tmp_path / "out")
    assert "openimages_unknown_class" not in report.counts()
    assert back.n_annotations == 5
    # the blank name comes back as the reader names a blank display name; every other name as it was
    assert list(back.schema.names[:4]) == NAMES[:4]
    assert [back.schema.names[k] for k in back.annotations.label][:4] == NAMES[:4]
    np.testing.assert_allclose(back.annotations.box, ds.annotations.box / [20, 10, 20, 10])  # no images: fractions


@pytest.mark.parametrize("quote", [False, True])  # True: a quoted field sends the file through the exact path
def test_reader_strips_label_names_like_the_descriptions(tmp_path: Path, quote: bool) -> None:
    (tmp_path / "class-descriptions-boxable.csv").write_text(" /m/01,Cat\n/m/02 ,Dog\n")
    name = '"x"' if quote else "x"
    (tmp_path / "annotations-bbox.csv").write_text(
        "ImageID,LabelName,XMin,XMax,YMin,YMax\n"
        f"{name}, /m/01,0.1,0.5,0.1,0.5\n"
        "x,/m/02 ,0.2,0.6,0.2,0.6\n"
        "x,/m/01,0.3,0.7,0.3,0.7\n")
    (tmp_path / "annotations-human-imagelabels-boxable.csv").write_text(
        "ImageID,Source,LabelName,Confidence\nx,verification,/m/02  ,1\nx,verification, /m/01,0\n")
    back, report = parse(tmp_path)
    assert "openimages_unknown_class" not in report.counts()
    assert back.schema.names == ("Cat", "Dog")
    assert [back.schema.names[k] for k in back.annotations.label] == ["Cat", "Dog", "Cat"]
    assert back.images.extra["pos_category_ids"].tolist() == [[2]]
    assert back.images.extra["neg_category_ids"].tolist() == [[1]]


def test_without_descriptions_padded_label_names_are_one_class(tmp_path: Path) -> None:
    (tmp_path / "annotations-bbox.csv").write_text(
        "ImageID,LabelName,XMin,XMax,YMin,YMax\nx, /m/01,0.1,0.5,0.1,0.5\nx,/m/01,0.3,0.7,0.3,0.7\n")
    back, _ = parse(tmp_path / "annotations-bbox.csv")
    assert back.schema.names == ("/m/01",) and back.n_annotations == 2


def test_detections_of_padded_classes_match_the_truth(tmp_path: Path) -> None:
    ds = _dataset()
    io.write(ds, tmp_path / "out", "openimages", images=False)
    truth, _ = parse(tmp_path / "out")
    pred = truth.replace(annotations=dataclasses.replace(truth.annotations,
                                                        score=np.linspace(0.5, 0.9, truth.n_annotations)))
    write_openimages_results(pred, tmp_path / "pred.csv", layout="csv")
    back = read_openimages_results(tmp_path / "pred.csv", like=truth)
    assert back.n_annotations == truth.n_annotations
    assert back.annotations.label.tolist() == truth.annotations.label.tolist()
