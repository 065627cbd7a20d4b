"""YOLO round trips as Ultralytics and Roboflow users meet them: data.yaml keys maslow has no field for, flip_idx
without keypoint names, ``kpt_shape: [K, 2]``, values printed with more than 6 decimals, ``names`` with ids that
are not 0..k-1, background images (empty or missing label files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from maslow.io import parquet, yolo


def _png(path: Path, w: int = 64, h: int = 48) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (w, h), 100).save(path)


def _text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


ROBOFLOW_YAML = """path: .
train: ../train/images
val: val.txt
nc: 2
names: ['car', 'bus']
download: https://example.org/cars.zip
roboflow:
  workspace: acme
  project: cars
  version: 3
  license: CC BY 4.0
  url: https://universe.roboflow.com/acme/cars/dataset/3
"""
#: Roboflow prints exact binary fractions of the image size: 8 decimals here
A_LABELS = "0 0.4390625 0.49453125 0.08125 0.0953125\n1 0.1234567 0.2345678 0.1000000 0.1000000\n"


def _roboflow(root: Path) -> Path:
    for name in ("a", "b", "c"):
        _png(root / "train/images" / f"{name}.jpg")
    _png(root / "valid/images/d.jpg")
    _text(root / "train/labels/a.txt", A_LABELS)
    _text(root / "train/labels/b.txt", "")  # empty: a background image; c has no label file: one too
    _text(root / "valid/labels/d.txt", "1 0.5 0.5 1 1\n")
    _text(root / "val.txt", "./valid/images/d.jpg\n")
    _text(root / "data.yaml", ROBOFLOW_YAML)
    return root / "data.yaml"


def test_roboflow_export_keeps_its_yaml_keys_decimals_and_background_images(tmp_path: Path) -> None:
    ds, report = yolo.parse(_roboflow(tmp_path / "rf"))
    assert len(report) == 0
    assert ds.info["yolo"] == {"decimals": 8, "yaml": {"download": "https://example.org/cars.zip", "roboflow": {
        "workspace": "acme", "project": "cars", "version": 3, "license": "CC BY 4.0",
        "url": "https://universe.roboflow.com/acme/cars/dataset/3"}}}
    assert ds.images.path.tolist() == ["train/images/a.jpg", "train/images/b.jpg", "train/images/c.jpg",
                                       "valid/images/d.jpg"]
    assert np.bincount(ds.annotations.image, minlength=4).tolist() == [2, 0, 0, 1]  # b and c: no objects

    rep = yolo.write(ds, tmp_path / "out", images=False)
    assert not rep.lost
    written = yaml.safe_load((tmp_path / "out/data.yaml").read_text())
    assert written["roboflow"]["license"] == "CC BY 4.0" and written["download"] == "https://example.org/cars.zip"
    # the values as printed: 8 decimals give back the same bytes (6 would move them by up to 5e-7)
    assert (tmp_path / "out/labels/train/a.txt").read_text() == (
        "0 0.43906250 0.49453125 0.08125000 0.09531250\n1 0.12345670 0.23456780 0.10000000 0.10000000\n")
    assert (tmp_path / "out/labels/train/b.txt").read_text() == (tmp_path / "out/labels/train/c.txt").read_text() == ""
    # through parquet (a workspace snapshot) and back: the same
    parquet.write_parquet(ds, tmp_path / "snap")
    yolo.write(parquet.read_parquet(tmp_path / "snap"), tmp_path / "again", images=False)
    assert (tmp_path / "again/labels/train/a.txt").read_bytes() == (tmp_path / "out/labels/train/a.txt").read_bytes()
    assert yaml.safe_load((tmp_path / "again/data.yaml").read_text())["roboflow"] == written["roboflow"]


def test_six_decimals_stay_six_and_a_second_round_trip_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "d"
    _png(root / "images/train/a.png", 640, 480)
    text = "0 0.123457 0.500000 0.200000 0.333333\n0 0.1 0.2 0.3 0.2 0.3 0.4 0.1 0.4 0.05 0.3\n"
    _text(root / "labels/train/a.txt", text)
    _text(root / "data.yaml", "train: images/train\nval: images/train\nnames: [a]\n")
    ds, _ = yolo.parse(root)
    assert "yolo" not in ds.info
    yolo.write(ds, tmp_path / "one", task="segment")
    one = (tmp_path / "one/labels/train/a.txt").read_text()
    assert one.splitlines()[1] == "0 0.100000 0.200000 0.300000 0.200000 0.300000 0.400000 0.100000 0.400000 " \
                                  "0.050000 0.300000"
    yolo.write(yolo.read_yolo(tmp_path / "one"), tmp_path / "two", task="segment", decimals=9)
    two = (tmp_path / "two/labels/train/a.txt").read_text().split()
    np.testing.assert_allclose([float(v) for v in two], [float(v) for v in one.split()], atol=1e-12)


def test_pose_flip_idx_without_names_and_kpt_shape_two_are_written_back(tmp_path: Path) -> None:
    root = tmp_path / "pose"
    _png(root / "images/train/p.png")
    _png(root / "images/val/q.png")
    _text(root / "labels/train/p.txt", "0 0.5 0.5 0.5 0.5 0.4 0.4 0.6 0.4 0.5 0.6\n")
    _text(root / "labels/val/q.txt", "0 0.5 0.5 0.5 0.5 0.4 0.4 0 0 0.5 0.6\n")  # the 2nd point not labelled
    _text(root / "data.yaml", "path: .\ntrain: images/train\nval: images/val\nkpt_shape: [3, 2]\n"
                              "flip_idx: [1, 0, 2]\nnames:\n  0: face\n")
    ds, report = yolo.parse(root)
    assert len(report) == 0 and ds.info["yolo"] == {"flip_idx": [1, 0, 2], "kpt_shape": [3, 2]}
    rep = yolo.write(ds, tmp_path / "out", images=False)
    assert not any("flip_idx not written" in n for n in rep.notes)
    data = yaml.safe_load((tmp_path / "out/data.yaml").read_text())
    assert data["flip_idx"] == [1, 0, 2] and data["kpt_shape"] == [3, 2]
    assert (tmp_path / "out/labels/val/q.txt").read_text() == \
        "0 0.500000 0.500000 0.500000 0.500000 0.400000 0.400000 0.000000 0.000000 0.500000 0.600000\n"
    # a point labelled hidden (v = 1) can't be said in [K, 2]: [K, 3] then
    kp = ds.annotations.keypoints.copy()
    kp[0, 2, 2] = 1
    hidden = ds.replace(annotations=ds.annotations.with_columns(keypoints=kp))
    yolo.write(hidden, tmp_path / "v3", images=False)
    assert yaml.safe_load((tmp_path / "v3/data.yaml").read_text())["kpt_shape"] == [3, 3]


def test_names_with_ids_that_are_not_0_to_k_are_reported_and_renumbered(tmp_path: Path) -> None:
    root = tmp_path / "ids"
    _png(root / "images/train/a.png")
    _text(root / "labels/train/a.txt", "0 0.5 0.5 0.2 0.2\n5 0.3 0.3 0.1 0.1\n2 0.7 0.7 0.1 0.1\n")
    _text(root / "data.yaml", "train: images/train\nval: images/train\nnames:\n  0: car\n  2: bus\n  5: truck\n")
    ds, report = yolo.parse(root)
    assert [i.type for i in report] == ["yolo_class_ids"] and "0..2 for Ultralytics" in report.issues[0].message
    assert [c.id for c in ds.schema.classes] == [0, 2, 5]
    rep = yolo.write(ds, tmp_path / "out", images=False)
    assert rep.lost["class_id"] == 2
    assert any("'bus' 2 -> 1, 'truck' 5 -> 2" in n for n in rep.notes)
    assert [line.split()[0] for line in (tmp_path / "out/labels/train/a.txt").read_text().splitlines()] == \
        ["0", "2", "1"]
