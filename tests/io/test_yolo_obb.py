"""Ultralytics OBB (oriented boxes, ``cls x1 y1 x2 y2 x3 y3 x4 y4``): read as 4-point polygons when the task is
said (data.yaml ``task: obb`` or ``task="obb"``), written back as OBB lines; rotated boxes of Label Studio and
CVAT written as their turned corners."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow import Annotations, Dataset, FormatError, Images, LabelSchema
from maslow.io import cvat, labelstudio, yolo
from maslow.io._yolo_obb import min_area_rect

OBB = Path(__file__).parents[1] / "data" / "yolo" / "obb"


def _corners(cx: float, cy: float, w: float, h: float, deg: float) -> np.ndarray:
    """A rectangle turned clockwise on screen by ``deg`` about its centre (Ultralytics' ``xywhr2xyxyxyxy``)."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([(cx + c * dx - s * dy, cy + s * dx + c * dy)
                     for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2))])


def _lines(path: Path) -> np.ndarray:
    return np.array([[float(v) for v in line.split()] for line in path.read_text().splitlines()])


def test_obb_fixture_reads_as_oriented_polygons_and_writes_back_the_same_bytes(tmp_path: Path) -> None:
    ds, report = yolo.parse(OBB, task="obb")
    assert len(report) == 0
    assert ds.info["yolo"] == {"task": "obb"}
    assert ds.annotations.polygon is not None
    plane = np.asarray(ds.annotations.polygon[0][0]).reshape(-1, 2)
    np.testing.assert_allclose(plane, _corners(50, 25, 40, 10, 30), atol=1e-6 * 100)
    # the box is the oriented box's axis-aligned extent (Ultralytics' OBB.xyxy)
    np.testing.assert_allclose(ds.annotations.box[0], [*plane.min(0), *plane.max(0)])
    assert ds.images.path.tolist() == ["images/train/P0001.png", "images/val/P0002.png"]  # background image kept

    rep = yolo.write(ds, tmp_path / "out")  # images: symlinks
    assert rep.notes[0].startswith("task 'obb'") and not rep.lost
    for split, name in (("train", "P0001"), ("val", "P0002")):
        assert (tmp_path / f"out/labels/{split}/{name}.txt").read_bytes() == \
            (OBB / f"labels/{split}/{name}.txt").read_bytes()
    assert "task: obb" in (tmp_path / "out/data.yaml").read_text()
    again, report = yolo.parse(tmp_path / "out")  # the task from data.yaml this time
    assert again.info["yolo"]["task"] == "obb" and len(report) == 0


def test_obb_without_the_task_is_read_as_segments_with_a_hint(tmp_path: Path) -> None:
    ds, report = yolo.parse(OBB)
    assert [i.type for i in report] == ["yolo_obb_like"] and "task='obb'" in report.issues[0].message
    assert "yolo" not in ds.info and yolo.task_for(ds)[0] == "segment"
    shutil.copytree(OBB, tmp_path / "bad")
    (tmp_path / "bad/labels/train/P0001.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2\n")
    _, report = yolo.parse(tmp_path / "bad", task="obb")
    bad = [i for i in report if i.type == "yolo_bad_columns"]
    assert len(bad) == 1 and bad[0].record == "line 1" and "9 (cls x1 y1" in bad[0].message
    with pytest.raises(FormatError, match="task must be 'obb'"):
        yolo.parse(OBB, task="segment")


def test_cvat_rotated_box_becomes_its_turned_corners(tmp_path: Path) -> None:
    (tmp_path / "annotations.xml").write_text(
        "<annotations><version>1.1</version><meta><task><labels><label><name>ship</name><type>rectangle</type>"
        '</label></labels></task></meta><image id="0" name="a.png" width="200" height="100">'
        '<box label="ship" source="manual" occluded="0" xtl="60" ytl="40" xbr="140" ybr="60" rotation="30" '
        'z_order="0"/><box label="ship" source="manual" occluded="0" xtl="10" ytl="10" xbr="30" ybr="20" '
        'z_order="0"/></image></annotations>')
    ds, _ = cvat.parse(tmp_path / "annotations.xml")
    detect = yolo.write(ds, tmp_path / "detect", images=False)  # the default task: the angle is said to be lost
    assert any("1 rotated boxes were written without their angle" in n for n in detect.notes)
    rep = yolo.write(ds, tmp_path / "obb", images=False, task="obb")
    assert not rep.lost.get("clipped")
    got = _lines(tmp_path / "obb/labels/train/a.txt")
    np.testing.assert_allclose(got[0, 1:].reshape(4, 2) * [200, 100], _corners(100, 50, 80, 20, 30), atol=1e-4)
    np.testing.assert_allclose(got[1, 1:].reshape(4, 2) * [200, 100], [[10, 10], [30, 10], [30, 20], [10, 20]],
                               atol=1e-4)


def test_label_studio_rotated_rectangle_becomes_its_turned_corners(tmp_path: Path) -> None:
    """Label Studio turns a rectangle about its top-left corner: corners as label-studio-sdk's
    ``convert_annotation_to_yolo_obb`` computes them."""
    value = {"x": 30.0, "y": 20.0, "width": 25.0, "height": 30.0, "rotation": 20.0, "rectanglelabels": ["car"]}
    task = {"id": 1, "data": {"image": "a.png"}, "annotations": [{"id": 1, "result": [
        {"id": "r1", "type": "rectanglelabels", "from_name": "label", "to_name": "image", "original_width": 200,
         "original_height": 100, "value": value}]}]}
    (tmp_path / "tasks.json").write_text(json.dumps([task]))
    ds, _ = labelstudio.parse(tmp_path / "tasks.json")
    yolo.write(ds, tmp_path / "obb", images=False, task="obb")
    x, y, w, h = 60.0, 20.0, 50.0, 30.0  # pixels
    c, s = math.cos(math.radians(20)), math.sin(math.radians(20))
    expected = [(x, y), (x + w * c, y + w * s), (x + w * c - h * s, y + w * s + h * c), (x - h * s, y + h * c)]
    got = _lines(tmp_path / "obb/labels/train/a.txt")[0, 1:].reshape(4, 2) * [200, 100]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_other_polygons_get_their_minimum_area_rectangle(tmp_path: Path) -> None:
    Image.new("L", (100, 100)).save(tmp_path / "a.png")
    hexagon = [20, 50, 35, 24, 65, 24, 80, 50, 65, 76, 35, 76]
    ds = Dataset(schema=LabelSchema.from_names(["x"]), root=tmp_path,
                 images=Images(path=["a.png"], width=[100], height=[100]),
                 annotations=Annotations(image=[0], label=[0], box=[[20, 24, 80, 76]], polygon=[[hexagon]]))
    rep = yolo.write(ds, tmp_path / "obb", images=False, task="obb")
    assert rep.lost["polygon"] == 1
    rect = _lines(tmp_path / "obb/labels/train/a.txt")[0, 1:].reshape(4, 2) * 100
    pts = np.array(hexagon, float).reshape(-1, 2)
    area = np.linalg.norm(rect[1] - rect[0]) * np.linalg.norm(rect[2] - rect[1])
    brute = min(np.prod(np.ptp(pts @ np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]]), axis=0))
                for t in np.radians(np.arange(0, 90, 0.01)))  # the smallest bounding box over every angle
    assert area == pytest.approx(brute, rel=1e-4)


@pytest.mark.parametrize("deg", [0.0, 17.0, 45.0, 89.0])
def test_min_area_rect_gives_back_a_turned_rectangle(deg: float) -> None:
    rect = _corners(10, 20, 8, 3, deg)
    inside = np.array([[10.0, 20.0], [10.5, 20.3]])
    got = min_area_rect(np.vstack([rect, inside]))
    assert sorted(map(tuple, np.round(got, 9))) == sorted(map(tuple, np.round(rect, 9)))
