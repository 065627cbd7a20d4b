"""``annotations.extra["coco_bbox"]`` of results read with the C kernel and with the Python path.

Boxes written in full precision (float32 values in 17 digits, as a model's outputs dumped with ``json``) often give
their ``w``/``h`` back as ``x2 - x1``, while the writer's shortest ``w``/``h`` (``boxes.to_xywh``) is another, shorter
number: the boxes as read must be kept then, on both paths, so that the file's numbers are written back to the bit.
"""

from __future__ import annotations

import json
import mmap
from pathlib import Path

import numpy as np
import pytest

from maslow._native import load
from maslow.core import boxes as B
from maslow.core.dataset import Dataset
from maslow.io import coco, coco_results
from maslow.io._coco_columns import AnnColumns
from maslow.io._coco_native import read_results_native

KERNEL = load("records")
IMAGES = [{"id": i + 1, "file_name": f"{i}.jpg", "width": 640, "height": 480} for i in range(4)]


@pytest.fixture(scope="module")
def truth(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    path = tmp_path_factory.mktemp("precision") / "gt.json"
    path.write_text(json.dumps({"images": IMAGES, "categories": [{"id": 1, "name": "a"}], "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0}]}))
    return coco.parse(path)[0]


def _results(path: Path, kind: str) -> list[list[float]]:
    """A results list in image order (the kernel's fast path); boxes of ``kind``: "float32" (17 digits), "decimal"
    (2 decimals) or "integer". Returns the boxes as written."""
    rng = np.random.default_rng(3)
    dets, boxes = [], []
    for j in range(120):
        xywh = np.concatenate([rng.uniform(0, 400, 2), rng.uniform(1, 200, 2)])
        box = ([float(v) for v in xywh.astype(np.float32)] if kind == "float32" else
               [round(float(v), 2) for v in xywh] if kind == "decimal" else [float(int(v)) for v in xywh])
        dets.append({"image_id": j // 30 + 1, "category_id": 1, "bbox": box, "score": round(float(rng.random()), 3)})
        boxes.append(box)
    path.write_text(json.dumps(dets))
    return boxes


@pytest.mark.parametrize(("kind", "kept"), [("float32", True), ("decimal", True), ("integer", False)])
def test_both_paths_keep_the_boxes_as_read_alike(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, truth: Dataset,
                                                 kind: str, kept: bool) -> None:
    src = tmp_path / "dets.json"
    boxes = _results(src, kind)
    if KERNEL is not None:
        with open(src, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            acc = AnnColumns(bbox_optional=True)
            assert read_results_native(data, acc)
    for native in ("0", "1"):
        monkeypatch.setenv("MASLOW_NATIVE", native)
        pred = coco_results.parse(src, like=truth)[0]
        assert (B.COCO_BBOX in pred.annotations.extra) is kept, native
        if kept:
            assert np.asarray(pred.annotations.extra[B.COCO_BBOX]).tolist() == boxes
        out = tmp_path / f"out{native}.json"
        coco_results.write_coco_results(pred, out)
        assert [d["bbox"] for d in json.loads(out.read_text())] == boxes  # the file's numbers back, to the bit


def test_float32_boxes_need_the_boxes_as_read(tmp_path: Path) -> None:
    """The case itself: x2 - x1 gives every w/h back, the writer's shortest w/h does not (so x2 - x1 alone, the
    kernel's test, can't decide)."""
    boxes = np.asarray(_results(tmp_path / "dets.json", "float32"))
    xyxy = B.xywh_to_xyxy(boxes)
    assert ((xyxy[:, 2:] - xyxy[:, :2]) == boxes[:, 2:]).all()
    assert (B.to_xywh(xyxy)[:, 2:] != boxes[:, 2:]).any()
