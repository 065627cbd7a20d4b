"""Regions drawn with the image turned in Label Studio's editor (``image_rotation`` != 0).

What Label Studio stores, from its editor's source (HumanSignal/label-studio ``web/libs/editor``): the image's
``rotate`` action (``tags/object/Image/Image.js``) changes only ``rotation`` (and the zoom); the regions live in the
unturned stage's coordinates, and the Konva ``<Stage>`` holding them is drawn with ``rotation={item.rotation}``
and ``offsetX/offsetY={item.stageTranslate}`` (``components/ImageView/ImageView.jsx``; ``stageTranslate`` is
``{90: (0, H), 180: (W, H), 270: (W, 0)}``). A point clicked on the turned view becomes a stage point through the
inverse of that transform (``fixZoomedCoords``), and ``createSerializedResult`` writes it in percent of the
unturned stage with ``original_width/original_height`` = the image's natural size and ``image_rotation`` = the
view's angle. So the coordinates are those of the unturned image, and ``image_rotation`` only records the view:
the label-studio-sdk converters (``converter.py``, ``annotation_result_from_task``) drop it before their COCO, YOLO,
VOC and brush exports.

The tests draw an object on the turned view of a 200x100 image (its pixels turned as the editor shows them),
map the drawn points to the stage as the editor does, and check that maslow reads them where the object is in the
original image, and writes ``image_rotation`` back as read.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from maslow.io import labelstudio as ls
from maslow.io.checks import check_images

W, H = 200, 100


def _object() -> np.ndarray:
    img = np.zeros((H, W), bool)
    img[10:40, 20:60] = True  # rows y 10..39, columns x 20..59: the box [20, 10, 60, 40] in pixel edges
    return img


def _to_stage(sx: float, sy: float, rotation: int) -> tuple[float, float]:
    """The stage point of view point (sx, sy): the inverse of Konva's transform of a ``<Stage rotation offset>``,
    screen = R(rotation) (p - offset), with R the clockwise (y down) rotation and offset = stageTranslate."""
    offset = {0: (0, 0), 90: (0, H), 180: (W, H), 270: (W, 0)}[rotation]
    a = math.radians(-rotation)
    c, s = round(math.cos(a)), round(math.sin(a))
    return c * sx - s * sy + offset[0], s * sx + c * sy + offset[1]


def _drawn(rotation: int) -> list[dict[str, Any]]:
    """The results Label Studio saves for a box, a polygon and a keypoint drawn on the object as the turned view
    shows it."""
    view = np.rot90(_object(), k=-rotation // 90)  # the image turned clockwise, as the editor shows it
    rows, cols = np.flatnonzero(view.any(axis=1)), np.flatnonzero(view.any(axis=0))
    corners = [(cols[0], rows[0]), (cols[-1] + 1, rows[0]), (cols[-1] + 1, rows[-1] + 1), (cols[0], rows[-1] + 1)]
    pts = np.asarray([_to_stage(float(x), float(y), rotation) for x, y in corners])
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    cx, cy = _to_stage(float(cols[0] + cols[-1] + 1) / 2, float(rows[0] + rows[-1] + 1) / 2, rotation)
    common = {"to_name": "image", "original_width": W, "original_height": H, "image_rotation": rotation}
    return [
        {"id": "b", "type": "rectanglelabels", "from_name": "label", **common,
         "value": {"x": x0 / W * 100, "y": y0 / H * 100, "width": (x1 - x0) / W * 100,
                   "height": (y1 - y0) / H * 100, "rotation": 0, "rectanglelabels": ["car"]}},
        {"id": "p", "type": "polygonlabels", "from_name": "outline", **common,
         "value": {"points": [[x / W * 100, y / H * 100] for x, y in pts], "closed": True,
                   "polygonlabels": ["car"]}},
        {"id": "k", "type": "keypointlabels", "from_name": "kp", **common,
         "value": {"x": cx / W * 100, "y": cy / H * 100, "width": 0.5, "keypointlabels": ["centre"]}},
    ]


def _export(tmp_path: Path, rotation: int) -> Path:
    tasks = [{"id": 1, "data": {"image": "/data/upload/1/a.png"},
              "annotations": [{"id": 10, "completed_by": 1, "result": _drawn(rotation)}]}]
    src = tmp_path / f"r{rotation}.json"
    src.write_text(json.dumps(tasks), encoding="utf-8")
    return src


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_a_region_drawn_on_the_turned_image_lands_on_the_object(tmp_path: Path, rotation: int) -> None:
    ds, report = ls.parse(_export(tmp_path, rotation))
    assert (int(ds.images.width[0]), int(ds.images.height[0])) == (W, H)  # the natural size, not the view's
    a = ds.annotations
    ys, xs = np.nonzero(_object())
    truth = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    np.testing.assert_allclose(a.box[0], truth, atol=1e-9)  # the box drawn on the view, on the original object
    np.testing.assert_allclose(a.box[1], truth, atol=1e-9)  # the polygon's
    kp = a.keypoints[np.flatnonzero(np.isnan(a.box[:, 0]))[0], 0]
    np.testing.assert_allclose(kp, [40, 25, 2], atol=1e-9)  # the object's centre
    # the same as drawn on the unturned view: image_rotation changes nothing of where regions are
    flat, _ = ls.parse(_export(tmp_path, 0))
    np.testing.assert_allclose(a.box, flat.annotations.box, atol=1e-9)
    # one note for the file, not a warning per region: the coordinates need no fixing
    (issue,) = report.of_type("labelstudio_image_rotation")
    assert issue.severity == "info" and issue.message.startswith("3 regions were drawn with the image turned")
    assert not [i for i in report if i.severity in ("warning", "error")]


@pytest.mark.parametrize("rotation", [90, 270])
def test_image_rotation_is_written_back_as_read(tmp_path: Path, rotation: int) -> None:
    src = _export(tmp_path, rotation)
    ds, report = ls.parse(src)
    assert report.of_type("labelstudio_image_rotation")[0].severity == "info"
    rep = ls.write(ds, tmp_path / "out" / "tasks.json")
    assert rep.lossless, rep.lost
    read = {r["id"]: r for r in json.loads(src.read_text())[0]["annotations"][0]["result"]}
    back = {r["id"]: r for r in json.loads((tmp_path / "out/tasks.json").read_text())[0]["annotations"][0]["result"]}
    assert sorted(back) == sorted(read)
    for rid, res in read.items():
        again = back[rid]
        assert (again["image_rotation"], again["original_width"], again["original_height"]) == (rotation, W, H)
        for k, v in res["value"].items():
            if isinstance(v, float):
                assert again["value"][k] == pytest.approx(v, abs=1e-9)
            elif k == "points":
                np.testing.assert_allclose(again["value"][k], v, atol=1e-9)
            else:
                assert again["value"][k] == v


@pytest.mark.parametrize("swapped", [False, True], ids=["natural-size", "swapped-size"])
def test_a_size_swapped_against_the_image_file_is_reported(tmp_path: Path, swapped: bool) -> None:
    """``original_width/original_height`` stating the turned view's size (H x W) instead of the file's (W x H): the
    reader takes the size as stated, and ``check_images`` reports that the file disagrees (``size_mismatch``)."""
    (tmp_path / "upload" / "1").mkdir(parents=True)
    Image.new("L", (W, H)).save(tmp_path / "upload" / "1" / "a.png")  # the file: W wide, H high
    src = _export(tmp_path, 90)
    if swapped:
        tasks = json.loads(src.read_text())
        for res in tasks[0]["annotations"][0]["result"]:
            res["original_width"], res["original_height"] = H, W
        src.write_text(json.dumps(tasks), encoding="utf-8")
    ds, _ = ls.parse(src)
    stated = (H, W) if swapped else (W, H)
    assert (int(ds.images.width[0]), int(ds.images.height[0])) == stated
    found = check_images(ds)
    if not swapped:
        assert not found.issues
        return
    (issue,) = found.issues
    assert (issue.type, issue.severity, issue.file, issue.field) == ("size_mismatch", "error", "upload/1/a.png", "width")
    assert f"{H}x{W} declared and {W}x{H} in the file" in issue.message
