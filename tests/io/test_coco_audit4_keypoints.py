"""COCO written from annotations of a keypoint class without keypoints of their own (audit 4): a YOLO pose object whose
joints are all ``0 0 0`` reads as a NaN keypoints row, and the writer left ``keypoints`` and ``num_keypoints`` out of
its record, so pycocotools' ``COCOeval(..., "keypoints")`` raised KeyError 'num_keypoints'. Every annotation of a class
with K keypoint names now gets ``keypoints: [0] * 3K, num_keypoints: 0``, as COCO's person_keypoints files do."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.io import coco, yolo

_NAMES = "kpt_names: {0: [nose, left_eye, right_eye]}\n"


def _pose(root: Path) -> Path:
    """A YOLO pose dataset: one person with labelled joints, one whose joints are all ``0 0 0``, a box class."""
    for name in ("a", "b"):
        (root / "images/train").mkdir(parents=True, exist_ok=True)
        Image.new("L", (100, 80), 128).save(root / f"images/train/{name}.png")
    (root / "labels/train").mkdir(parents=True)
    (root / "labels/train/a.txt").write_text(
        "0 0.250000 0.375000 0.300000 0.500000 0.200000 0.250000 2 0.250000 0.225000 1 0.000000 0.000000 0\n"
        "0 0.650000 0.375000 0.300000 0.500000 0.000000 0.000000 0 0.000000 0.000000 0 0.000000 0.000000 0\n")
    (root / "labels/train/b.txt").write_text(
        "0 0.100000 0.100000 0.100000 0.100000 0.000000 0.000000 0 0.000000 0.000000 0 0.000000 0.000000 0\n"
        "1 0.500000 0.500000 0.200000 0.200000 0.000000 0.000000 0 0.000000 0.000000 0 0.000000 0.000000 0\n")
    (root / "data.yaml").write_text("train: images/train\nval: images/train\nnames: {0: person, 1: ball}\n"
                                    "kpt_shape: [3, 3]\nflip_idx: [0, 2, 1]\n" + _NAMES)
    return root


def _schema_names(ds: Dataset) -> Dataset:
    """The YOLO dataset with keypoint names on the person class only (a ball has none)."""
    classes = tuple(ClassDef(c.name, keypoints=("nose", "left_eye", "right_eye") if c.name == "person" else (),
                             skeleton=(), id=c.id) for c in ds.schema.classes)
    return ds.replace(schema=LabelSchema(classes=classes, tasks=ds.schema.tasks))


def test_an_object_without_keypoints_is_written_with_zero_keypoints(tmp_path: Path) -> None:
    ds, _ = yolo.parse(_pose(tmp_path / "y"))
    assert ds.annotations.keypoints is not None
    assert np.isnan(ds.annotations.keypoints[1]).all()  # the reader's "no keypoints" row
    ds = _schema_names(ds)
    rep = coco.write(ds, tmp_path / "out.json")
    anns = json.loads((tmp_path / "out.json").read_text())["annotations"]
    assert [a.get("num_keypoints") for a in anns] == [2, 0, 0, None]  # the ball: a class without keypoint names
    assert anns[1]["keypoints"] == [0] * 9 and anns[2]["keypoints"] == [0] * 9 and "keypoints" not in anns[3]
    assert anns[0]["keypoints"][2::3] == [2, 1, 0]
    assert dict(rep.lost) == {}


def test_yolo_pose_to_coco_and_back_is_unchanged(tmp_path: Path) -> None:
    src = _pose(tmp_path / "y")
    ds = io.read(src, "yolo")
    coco.write(ds, tmp_path / "c.json")
    back = coco.read_coco(tmp_path / "c.json", images_root=src)
    io.write(back, tmp_path / "y2", "yolo")
    for name in ("a", "b"):
        assert (tmp_path / f"y2/labels/train/{name}.txt").read_text() == (src / f"labels/train/{name}.txt").read_text()
    coco.write(back, tmp_path / "c2.json")  # and COCO -> COCO: the same bytes
    assert (tmp_path / "c2.json").read_bytes() == (tmp_path / "c.json").read_bytes()


def test_a_keypoint_class_without_any_keypoints_array_gets_zero_keypoints(tmp_path: Path) -> None:
    """A dataset with no keypoints column at all (boxes only) and a class with keypoint names."""
    schema = LabelSchema(classes=(ClassDef("person", keypoints=("a", "b")), ClassDef("car")))
    ds = Dataset(schema=schema, images=Images(path=np.array(["a.png"], object), width=np.array([10]),
                                              height=np.array([10])),
                 annotations=Annotations(image=np.array([0, 0]), label=np.array([0, 1]),
                                         box=np.array([[1.0, 1, 4, 4], [2, 2, 5, 5]])), root=tmp_path)
    coco.write(ds, tmp_path / "out.json")
    anns = json.loads((tmp_path / "out.json").read_text())["annotations"]
    assert anns[0]["keypoints"] == [0] * 6 and anns[0]["num_keypoints"] == 0
    assert "keypoints" not in anns[1] and "num_keypoints" not in anns[1]


def test_pycocotools_evaluates_the_written_keypoints(tmp_path: Path) -> None:
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ds, _ = yolo.parse(_pose(tmp_path / "y"))
    coco.write(_schema_names(ds), tmp_path / "gt.json")
    gt = COCO(str(tmp_path / "gt.json"))
    person = gt.getCatIds(catNms=["person"])
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9,
             "keypoints": a["keypoints"] if a["num_keypoints"] else [30, 30, 2] * 3}
            for a in gt.loadAnns(gt.getAnnIds(catIds=person))]
    ev = COCOeval(gt, gt.loadRes(dets), "keypoints")
    ev.params.catIds = person  # the ball has no keypoints
    ev.params.kpt_oks_sigmas = np.array([0.26, 0.25, 0.25]) / 10.0
    ev.evaluate()  # was KeyError: 'num_keypoints'
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)  # the one labelled person found; those without keypoints are ignored
