"""``apply_decisions``: two accepted findings that make one object of the model twice (a ``low_iou`` moving an
annotation onto a prediction, a ``missing`` adding that prediction) are a conflict, not two objects; an added
oriented box of an oriented COCO file is written back as ``obb``, the file staying oriented detection."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from maslow import io
from maslow.core.schema import Task
from maslow.quality.oriented import is_oriented
from maslow.quality.review import Decision, apply_decisions
from tests.quality.test_review_apply import _f, _tiny


def test_a_low_iou_and_a_missing_finding_of_one_box_are_a_conflict() -> None:
    """An ISSUES.json of an older maslow reported one prediction as both: accepting both moved the cat's box to
    [8, 8, 12, 12] and added a second cat there, logged as two applied changes."""
    ds = _tiny()
    move = _f(1, "low_iou", 1, 2, "cat", box=[8.0, 8, 12, 12])
    add = _f(2, "missing", 1, None, "cat", sug_class="cat", box=[8.0, 8, 12, 12])
    r = apply_decisions(ds, [move, add], {1: Decision("accepted"), 2: Decision("accepted")})
    assert [(c.outcome, c.action) for c in r.changes] == [("conflict", "move_box"), ("conflict", "add")]
    assert all("1 (low_iou" in c.detail and "2 (missing: adds it)" in c.detail and "twice" in c.detail
               for c in r.changes)
    assert r.dataset.n_annotations == ds.n_annotations
    assert r.dataset.annotations.box[2].tolist() == ds.annotations.box[2].tolist()
    assert r.counts()["conflict"] == 2 and r.counts()["applied"] == 0
    # one of them alone is applied; so are the two when their boxes differ
    alone = apply_decisions(ds, [move, add], {2: Decision("accepted")})
    assert [c.outcome for c in alone.changes] == ["applied"] and alone.dataset.n_annotations == 4
    other = _f(2, "missing", 1, None, "cat", sug_class="cat", box=[14.0, 14, 18, 18])
    both = apply_decisions(ds, [move, other], {1: Decision("accepted"), 2: Decision("accepted")})
    assert [c.outcome for c in both.changes] == ["applied", "applied"]
    # on another image, the same box is another object
    there = _f(2, "missing", 2, None, "cat", sug_class="cat", box=[8.0, 8, 12, 12])
    assert [c.outcome for c in apply_decisions(ds, [move, there], {1: Decision("accepted"),
                                                                     2: Decision("accepted")}).changes] == \
        ["applied", "applied"]


def test_keypoints_moved_and_added_from_one_prediction_are_a_conflict() -> None:
    """Keypoint findings name the prediction by its keypoints: the cat's keypoints moved to the model's and the
    model's cat added with the same keypoints (a new box too) left two cats with one skeleton."""
    ds = _tiny()
    kp = [[5.0, 5, 0.8], [6.0, 6, 0.7]]
    move = _f(1, "low_iou", 1, 2, "cat", kp=kp)
    add = _f(2, "missing", 1, None, "cat", sug_class="cat", box=[4.0, 4, 7, 7], kp=kp)
    r = apply_decisions(ds, [move, add], {1: Decision("accepted"), 2: Decision("accepted")})
    assert [(c.outcome, c.action) for c in r.changes] == [("conflict", "move_keypoints"), ("conflict", "add")]
    assert r.dataset.n_annotations == ds.n_annotations


def test_two_adds_of_one_object_are_a_conflict() -> None:
    ds = _tiny()
    a = _f(1, "missing", 2, None, "bird", sug_class="bird", box=[1.0, 1, 4, 4])
    b = _f(2, "missing", 2, None, "dog", sug_class="dog", box=[1.0, 1, 4, 4])
    r = apply_decisions(ds, [a, b], {1: Decision("accepted"), 2: Decision("accepted")})
    assert [c.outcome for c in r.changes] == ["conflict", "conflict"]
    assert r.dataset.n_annotations == ds.n_annotations


def test_an_added_oriented_box_is_written_as_obb(tmp_path: Path) -> None:
    """On a COCO file of hotcoco ``obb`` records, an accepted ``missing`` oriented box was written as a 4-point
    ``segmentation``: the file read back as instance segmentation, no longer oriented (qa then used box IoU)."""
    from maslow.sample import oriented

    src = tmp_path / "obb.json"
    io.write(oriented(4, size=200, seed=1), src, "coco", obb=True)
    truth = io.read_coco(src)
    assert is_oriented(truth) and truth.schema.task == Task.DETECTION
    img = 0
    corners = np.array([[150.0, 20], [180, 30], [175, 45], [145, 35]])  # a turned rectangle
    name = truth.schema.names[0]
    finding = {"rank": 1, "type": "missing", "score": 0.9, "file_name": str(truth.images.path[img]), "class": name,
               "image_row": img, "annotation_row": None, "image_id": int(truth.images.extra["coco_id"][img]),
               "annotation_id": None, "reason": "",
               "suggestion": {"class": name, "box_xyxy": [145.0, 20, 180, 45], "keypoints": None,
                              "polygon": [corners.ravel().tolist()], "text": ""}}
    r = apply_decisions(truth, [finding], {1: Decision("accepted")})
    assert r.changes[0].outcome == "applied"
    out = tmp_path / "fixed.json"
    io.write(r.dataset, out, "coco")
    records = json.loads(out.read_text())["annotations"]
    assert all("obb" in a and "segmentation" not in a for a in records), [sorted(a) for a in records][-1]
    assert len(records) == truth.n_annotations + 1
    back = io.read_coco(out)
    assert back.schema.task == Task.DETECTION and is_oriented(back)
    added = int(r.changes[0].new_row)
    got = np.asarray(back.annotations.polygon[added][0]).reshape(4, 2)
    np.testing.assert_allclose(got, corners, atol=1e-6)


def test_box_only_adds_to_a_dataset_of_outlines_are_noted() -> None:
    """An added object has a box only (no outline from the model): on instance segmentation the result says so, as
    pycocotools' segm evaluation of the file written fails without a segmentation (the log line alone said "box
    only: outline it in the annotation tool")."""
    from maslow.sample import shapes

    ds = shapes(4, seed=0)
    assert ds.annotations.polygon is not None
    name = ds.schema.names[0]
    add = {"rank": 1, "type": "missing", "file_name": str(ds.images.path[0]), "class": name, "image_row": 0,
           "annotation_row": None, "suggestion": {"class": name, "box_xyxy": [1.0, 1, 9, 9], "keypoints": None,
                                                  "text": ""}}
    r = apply_decisions(ds, [add], {1: Decision("accepted")})
    assert r.changes[0].outcome == "applied" and "box only" in r.changes[0].detail
    assert len(r.notes) == 1 and "1 added objects have a box and no outline (findings 1)" in r.notes[0]
    assert "segm evaluation" in r.notes[0] and r.to_dict()["notes"] == list(r.notes)
    boxes = _tiny()  # no outlines: nothing to say
    bird = _f(1, "missing", 2, None, "bird", sug_class="bird", box=[1.0, 1, 4, 4])
    assert apply_decisions(boxes, [bird], {1: Decision("accepted")}).notes == ()
