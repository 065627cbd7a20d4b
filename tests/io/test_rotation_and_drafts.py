"""Rotated rectangles between Label Studio and CVAT, and Label Studio drafts.

Label Studio turns a rectangle about its top-left corner ``(x, y)`` (label-studio-sdk's
``convert_annotation_to_yolo_obb``: corners ``(x, y), (x + w cos, y + w sin), ...``); CVAT turns its box about the
centre (``x' = cx + cos dx - sin dy``). The same object must keep its four corners from one tool to the other.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest

from maslow.io import cvat, labelstudio

W, H = 200, 100


def _ls_corners(v: dict[str, float]) -> np.ndarray:
    """Label Studio's rectangle value (percent) -> its 4 corners in pixels, as label-studio-sdk computes them."""
    x, y, w, h = v["x"] / 100 * W, v["y"] / 100 * H, v["width"] / 100 * W, v["height"] / 100 * H
    c, s = math.cos(math.radians(v["rotation"])), math.sin(math.radians(v["rotation"]))
    return np.array([(x, y), (x + w * c, y + w * s), (x + w * c - h * s, y + w * s + h * c), (x - h * s, y + h * c)])


def _cvat_corners(el: ET.Element) -> np.ndarray:
    """A CVAT <box> -> its 4 corners (turned by ``rotation`` degrees about its centre), same order as above."""
    x1, y1, x2, y2 = (float(el.get(k, "")) for k in ("xtl", "ytl", "xbr", "ybr"))
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    a = math.radians(float(el.get("rotation", 0)))
    c, s = math.cos(a), math.sin(a)
    return np.array([(cx + c * dx - s * dy, cy + s * dx + c * dy) for dx, dy in ((-hw, -hh), (hw, -hh), (hw, hh),
                                                                                  (-hw, hh))])


def _ls_task(value: dict[str, float], **task: object) -> dict[str, object]:
    res = {"id": "r1", "type": "rectanglelabels", "from_name": "label", "to_name": "image", "original_width": W,
           "original_height": H, "image_rotation": 0, "value": {**value, "rectanglelabels": ["car"]}}
    return {"id": 1, "data": {"image": "a.jpg"}, "annotations": [{"id": 10, "completed_by": 1, "result": [res]}],
            "predictions": [], **task}


@pytest.mark.parametrize("rotation", [30.0, 90.0, 247.5])
def test_label_studio_rotated_rectangle_keeps_its_corners_in_cvat(tmp_path: Path, rotation: float) -> None:
    value = {"x": 40.0, "y": 20.0, "width": 15.0, "height": 30.0, "rotation": rotation}
    (tmp_path / "tasks.json").write_text(json.dumps([_ls_task(value)]))
    ds, _ = labelstudio.parse(tmp_path / "tasks.json")
    report = cvat.write(ds, tmp_path / "annotations.xml")
    box = ET.parse(tmp_path / "annotations.xml").getroot().find("image/box")
    assert box is not None
    np.testing.assert_allclose(_cvat_corners(box), _ls_corners(value), atol=1e-9)
    assert "extra.ls_rotation" not in report.lost

    back, _ = cvat.parse(tmp_path / "annotations.xml")  # and back to Label Studio: the value as it was
    labelstudio.write(back, tmp_path / "again.json")
    again = json.loads((tmp_path / "again.json").read_text())[0]["annotations"][0]["result"][0]["value"]
    assert again["rotation"] == rotation
    np.testing.assert_allclose([again[k] for k in ("x", "y", "width", "height")],
                               [value[k] for k in ("x", "y", "width", "height")], atol=1e-9)


def _rotated_cvat_box(path: Path) -> None:
    """A CVAT file of one image with one box turned 45 degrees about its centre."""
    path.write_text(
        "<annotations><version>1.1</version><meta><task><labels><label><name>car</name><type>rectangle</type>"
        f"</label></labels></task></meta><image id=\"0\" name=\"a.jpg\" width=\"{W}\" height=\"{H}\">"
        '<box label="car" source="manual" occluded="0" xtl="50.00" ytl="20.00" xbr="90.00" ybr="40.00" '
        'rotation="45.00" z_order="0"/></image></annotations>')


def test_cvat_rotated_box_keeps_its_corners_in_label_studio(tmp_path: Path) -> None:
    _rotated_cvat_box(tmp_path / "annotations.xml")
    ds, _ = cvat.parse(tmp_path / "annotations.xml")
    report = labelstudio.write(ds, tmp_path / "tasks.json")
    value = json.loads((tmp_path / "tasks.json").read_text())[0]["annotations"][0]["result"][0]["value"]
    box = ET.parse(tmp_path / "annotations.xml").getroot().find("image/box")
    assert box is not None
    np.testing.assert_allclose(_ls_corners(value), _cvat_corners(box), atol=1e-9)
    assert "extra.cvat_rotation" not in report.lost


def test_a_rotation_the_target_cannot_draw_is_counted(tmp_path: Path) -> None:
    # both tools' angles on one row: CVAT's is written, Label Studio's can't be, and says so
    _rotated_cvat_box(tmp_path / "annotations.xml")
    ds, _ = cvat.parse(tmp_path / "annotations.xml")
    a = ds.annotations
    both = ds.replace(annotations=a.with_columns(extra={**a.extra, "ls_rotation": np.array([10.0])}))
    assert cvat.write(both, tmp_path / "out.xml").lost["extra.ls_rotation"] == 1


def test_label_studio_drafts_are_reported_not_dropped_silently(tmp_path: Path) -> None:
    draft = {"id": 3, "user": "a@b.c", "lead_time": 2.0, "result": [
        {"id": "d1", "type": "rectanglelabels", "from_name": "label", "to_name": "image", "original_width": W,
         "original_height": H, "value": {"x": 1, "y": 1, "width": 5, "height": 5, "rectanglelabels": ["car"]}}]}
    task = _ls_task({"x": 40.0, "y": 20.0, "width": 15.0, "height": 30.0, "rotation": 0.0},
                    drafts=[draft, {"id": 4, "result": []}])
    (tmp_path / "tasks.json").write_text(json.dumps([task]))
    ds, report = labelstudio.parse(tmp_path / "tasks.json")
    assert ds.n_annotations == 1  # the submitted annotation only
    found = [i for i in report if i.type == "draft_annotation"]
    assert len(found) == 1 and found[0].message.startswith("1 draft") and found[0].image == 0
