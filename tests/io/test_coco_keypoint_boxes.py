"""Writing COCO from annotations that have keypoints but no box (CVAT and Label Studio skeletons): they get the box
of their labelled keypoints (``v > 0``, the points ``num_keypoints`` counts), as Datumaro's COCO keypoints export
(CVAT's) does with ``Points.get_bbox`` (absent points left out) and ``area = w * h``; nothing is dropped as a tag,
and what can't be written is counted once, under ``keypoints``."""

from __future__ import annotations

import contextlib
import io as _io
import json
import warnings
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.io import cvat
from maslow.io.coco import parse, write_coco

CVAT = Path(__file__).parents[1] / "data" / "cvat"


def _cvat(name: str) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cvat.read_cvat(CVAT / name)


def _reference_box(kp: list[float]) -> list[float]:
    """Datumaro's ``Points.get_bbox`` on COCO's flat keypoints: the extent of the points that are not absent."""
    xs = [x for x, v in zip(kp[0::3], kp[2::3], strict=True) if v != 0]
    ys = [y for y, v in zip(kp[1::3], kp[2::3], strict=True) if v != 0]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def test_cvat_video_skeletons_are_written_with_the_box_of_their_labelled_points(tmp_path: Path) -> None:
    ds = _cvat("video.xml")
    skeletons = int((~ds.annotations.has_box).sum())
    assert skeletons == 2 and ds.n_annotations == 8
    rep = write_coco(ds, tmp_path / "video.json")
    assert rep.n_annotations == 8 and not rep.lost, rep.to_dict()  # before: 6 written, "tags 2"
    assert "2 boxes computed from the extent of their labelled keypoints (v > 0)" in rep.notes
    doc = json.loads((tmp_path / "video.json").read_text())
    people = [a for a in doc["annotations"] if "keypoints" in a]
    assert len(people) == 2
    for a in people:
        assert a["bbox"] == _reference_box(a["keypoints"])
        assert a["area"] == a["bbox"][2] * a["bbox"][3]
        assert a["num_keypoints"] == sum(v > 0 for v in a["keypoints"][2::3])
    # the second skeleton has one labelled point (the tail is absent): a box of size 0, kept
    assert people[1]["keypoints"] == [21, 10, 2, 31, 20, 0] and people[1]["bbox"] == [21, 10, 0, 0]
    back, report = parse(tmp_path / "video.json")
    assert report.counts() == {"coco_degenerate_polygon": 1}  # the lane, a 2-point polyline (not a keypoint matter)
    person = back.schema.classes[back.schema.names.index("person")]
    assert person.keypoints == ("nose", "tail") and "keypoints" in {t.value for t in back.schema.tasks}
    np.testing.assert_array_equal(back.annotations.keypoints[~np.isnan(back.annotations.keypoints).all((1, 2))],
                                  ds.annotations.keypoints[~ds.annotations.has_box])
    # pycocotools evaluates the file, the box of size 0 too: the truth against itself scores 1
    with contextlib.redirect_stdout(_io.StringIO()):
        gt = COCO(str(tmp_path / "video.json"))
        dt = gt.loadRes([{"image_id": a["image_id"], "category_id": a["category_id"], "keypoints": a["keypoints"],
                          "score": 1.0} for a in people])
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.catIds = [people[0]["category_id"]]
        ev.params.kpt_oks_sigmas = np.array([0.1, 0.1])
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == 1.0


def test_cvat_shapes_skeleton_is_written_and_the_cuboid_points_counted_once(tmp_path: Path) -> None:
    ds = _cvat("shapes.xml")
    rep = write_coco(ds, tmp_path / "shapes.json")
    # the skeleton is written (before: "tags 1"); the cuboid's 8 points have no keypoint names in COCO
    assert dict(rep.lost) == {"keypoints": 1} and rep.n_annotations == ds.n_annotations == 4, rep.to_dict()
    doc = json.loads((tmp_path / "shapes.json").read_text())
    (person,) = [a for a in doc["annotations"] if "keypoints" in a]
    assert person["keypoints"] == [5, 6, 2, 8, 9, 1, 7, 8, 0] and person["num_keypoints"] == 2
    assert person["bbox"] == [5, 6, 3, 3] and person["area"] == 9  # the absent tail (7, 8) is left out


def test_what_coco_cannot_hold_is_counted_once_under_its_reason(tmp_path: Path) -> None:
    nan = np.nan
    kp = np.array([
        [[1, 2, 0], [3, 4, 0], [nan, nan, nan]],  # a skeleton with no labelled point and no box: not written
        [[nan, nan, nan]] * 3,  # a tag (no geometry, no keypoints)
        [[1, 2, 2], [nan, nan, nan], [5, 6, 2]],  # a box and partly NaN points (a point of a class of 2: beyond)
        [[2, 3, 2], [4, 8, 1], [nan, nan, nan]],  # no box: the box of its points
        [[7, 7, 2], [nan, nan, nan], [nan, nan, nan]],  # a point of a class without keypoint names, no box
    ], np.float64)
    nobox = [nan] * 4
    ann = Annotations(image=[0, 0, 0, 0, 0], label=[0, 1, 0, 0, 2],
                      box=[nobox, nobox, [0, 0, 9, 9], nobox, nobox], keypoints=kp)
    schema = LabelSchema(classes=(ClassDef("person", keypoints=("a", "b")), ClassDef("sunny"), ClassDef("dot")))
    ds = Dataset(schema=schema, images=Images(path=["a.jpg"], width=[20], height=[20]), annotations=ann)
    rep = write_coco(ds, tmp_path / "h.json")
    assert dict(rep.lost) == {"keypoints": 3, "tags": 1}, rep.to_dict()  # rows 0, 2, 4; row 1
    assert rep.n_annotations == 2
    assert any("2 annotations with keypoints but no box, polygon or mask not written" in n and
               "1 without a labelled keypoint" in n and "1 of classes without keypoint names" in n
               for n in rep.notes), rep.notes
    doc = json.loads((tmp_path / "h.json").read_text())
    assert [a["bbox"] for a in doc["annotations"]] == [[0, 0, 9, 9], [2, 3, 2, 5]]
    assert doc["annotations"][1]["num_keypoints"] == 2 and doc["annotations"][1]["area"] == 10
