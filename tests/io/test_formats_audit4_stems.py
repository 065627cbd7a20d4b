"""Audit 4, F4: several image files with one stem (``a.jpg`` and ``a.png``): the DOTA, Open Images and label-map
readers report which one they took (``ambiguous_image``); the label-map reader takes the one named like the map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from maslow.io import dota, openimages, semantic

_OI_HEADER = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction," \
    "IsInside\n"


def _image(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (size, size), 0).save(path)


def test_semantic_takes_the_image_named_like_the_label_map(tmp_path: Path) -> None:
    _image(tmp_path / "images" / "a.jpg", 20)
    _image(tmp_path / "images" / "a.png", 2)
    _image(tmp_path / "images" / "b.jpg", 2)
    (tmp_path / "annotations").mkdir()
    Image.fromarray(np.array([[0, 1], [1, 1]], np.uint8)).save(tmp_path / "annotations" / "a.png")
    Image.fromarray(np.ones((2, 2), np.uint8)).save(tmp_path / "annotations" / "b.png")
    ds, report = semantic.parse(tmp_path / "annotations")
    assert ds.images.path.tolist() == ["a.png", "b.jpg"] and ds.images.width.tolist() == [2, 2]
    assert report.counts() == {"ambiguous_image": 1}  # no size_mismatch: the 20x20 a.jpg is not taken
    (issue,) = report.issues
    assert issue.severity == "warning" and issue.image == 0
    assert "a.jpg" in issue.message and "a.png" in issue.message and "took 'a.png'" in issue.message


def test_semantic_without_a_same_name_image_takes_the_first_suffix(tmp_path: Path) -> None:
    _image(tmp_path / "images" / "a.png", 2)
    _image(tmp_path / "images" / "a.jpg", 2)
    (tmp_path / "annotations").mkdir()
    Image.fromarray(np.ones((2, 2), np.uint8)).save(tmp_path / "annotations" / "a.png")
    (tmp_path / "images" / "a.png").rename(tmp_path / "images" / "a.bmp")
    ds, report = semantic.parse(tmp_path / "annotations")
    assert ds.images.path.tolist() == ["a.jpg"]  # .jpg comes before .bmp in IMAGE_SUFFIXES
    assert report.counts() == {"ambiguous_image": 1} and "took 'a.jpg'" in report.issues[0].message


def test_dota_reports_two_images_of_one_stem(tmp_path: Path) -> None:
    _image(tmp_path / "images" / "a.jpg", 20)
    _image(tmp_path / "images" / "a.png", 10)
    _image(tmp_path / "images" / "b.png", 10)
    (tmp_path / "labelTxt").mkdir()
    (tmp_path / "labelTxt" / "a.txt").write_text("1 1 2 1 2 2 1 2 plane 0\n")
    (tmp_path / "labelTxt" / "b.txt").write_text("1 1 2 1 2 2 1 2 plane 0\n")
    ds, report = dota.parse(tmp_path)
    assert ds.images.path.tolist() == ["images/a.jpg", "images/b.png"]
    assert report.counts() == {"ambiguous_image": 1}
    msg = report.issues[0].message
    assert "'a'" in msg and "a.jpg, a.png" in msg and "took 'a.jpg'" in msg
    assert report.issues[0].file is not None and report.issues[0].file.endswith("a.jpg")


def test_openimages_reports_the_image_it_sized_the_boxes_by(tmp_path: Path) -> None:
    _image(tmp_path / "images" / "a.jpg", 20)
    _image(tmp_path / "images" / "a.png", 10)
    _image(tmp_path / "images" / "b.jpg", 10)
    _image(tmp_path / "images" / "c.jpg", 10)
    _image(tmp_path / "images" / "c.png", 10)  # a stem no ImageID uses: not reported
    (tmp_path / "validation-annotations-bbox.csv").write_text(
        _OI_HEADER + "a,xclick,/m/01,1,0.1,0.9,0.2,0.8,0,0,0,0,0\nb,xclick,/m/01,1,0.1,0.9,0.2,0.8,0,0,0,0,0\n")
    ds, report = openimages.parse(tmp_path)
    assert ds.images.path.tolist() == ["a.jpg", "b.jpg"] and ds.images.width.tolist() == [20, 10]
    amb = [i for i in report if i.type == "ambiguous_image"]
    assert len(amb) == 1 and amb[0].image == 0
    assert "'a'" in amb[0].message and "a.jpg, a.png" in amb[0].message and "took 'a.jpg'" in amb[0].message


def test_no_finding_without_ambiguity(tmp_path: Path) -> None:
    _image(tmp_path / "images" / "a.jpg", 10)
    (tmp_path / "labelTxt").mkdir()
    (tmp_path / "labelTxt" / "a.txt").write_text("1 1 2 1 2 2 1 2 plane 0\n")
    assert "ambiguous_image" not in dota.parse(tmp_path)[1].counts()
    (tmp_path / "validation-annotations-bbox.csv").write_text(
        _OI_HEADER + "a,xclick,/m/01,1,0.1,0.9,0.2,0.8,0,0,0,0,0\n")
    assert "ambiguous_image" not in openimages.parse(tmp_path)[1].counts()
