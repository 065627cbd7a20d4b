"""apply_decisions: accepted findings of qa applied to the truth, rejected ones not, mismatched truth refused."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import pytest

from maslow import metrics
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.errors import FormatError, InvalidDatasetError, MaslowError, UnknownLabelError
from maslow.quality import find_label_issues
from maslow.quality.records import issue_records
from maslow.quality.review import Decision, apply_decisions, review_counts
from maslow.sample import shapes


def _planted() -> dict[str, Any]:
    """A clean detection truth, predictions equal to it (scored), and a copy with 2 wrong classes, 2 dropped boxes,
    1 spurious box and 1 shifted box; the findings qa makes of it."""
    full = shapes(60, seed=3)
    fa = full.annotations
    keep = ~fa.iscrowd
    clean = full.replace(schema=dataclasses.replace(full.schema, tasks=(Task.DETECTION,)),
                         annotations=Annotations(image=fa.image[keep], label=fa.label[keep], box=fa.box[keep]))
    a = clean.annotations
    rng = np.random.default_rng(0)
    pred = clean.replace(annotations=Annotations(image=a.image, label=a.label, box=a.box,
                                                 score=rng.uniform(0.6, 0.99, len(a)), source="model"))
    label = a.label.copy()
    label[[5, 20]] = (label[[5, 20]] + 1) % 3
    box = a.box.copy()
    box[10, [0, 2]] += 0.35 * (box[10, 2] - box[10, 0])
    kept = np.ones(len(a), bool)
    kept[[2, 30]] = False
    spurious_image = int(a.image[40])
    noisy = clean.replace(annotations=Annotations.sort_rows(
        image=np.r_[a.image[kept], spurious_image], label=np.r_[label[kept], 0],
        box=np.r_[box[kept], [[0.0, 0.0, 6.0, 6.0]]]))
    findings = issue_records(find_label_issues(noisy, pred, iou_type="bbox"), noisy)
    return {"clean": clean, "noisy": noisy, "pred": pred, "findings": findings}


@pytest.fixture(scope="module")
def planted() -> dict[str, Any]:
    return _planted()


def _canonical(ds: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = ds.annotations
    assert a.box is not None
    o = np.lexsort((a.box[:, 3], a.box[:, 2], a.box[:, 1], a.box[:, 0], a.label, a.image))
    return a.image[o], a.label[o], a.box[o]


def test_accepting_the_planted_findings_gives_back_the_clean_truth(planted: dict[str, Any]) -> None:
    findings, noisy, clean, pred = planted["findings"], planted["noisy"], planted["clean"], planted["pred"]
    assert sorted(f["type"] for f in findings) == ["extra", "low_iou", "missing", "missing", "wrong_class",
                                                  "wrong_class"]
    result = apply_decisions(noisy, findings, {f["rank"]: Decision("accepted") for f in findings})
    assert result.counts()["applied"] == 6 and result.n_pending == 0
    got, want = _canonical(result.dataset), _canonical(clean)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    np.testing.assert_allclose(got[2], want[2], atol=0.006)  # ISSUES.json rounds boxes to 2 decimals
    # the eval check: the corrected truth scores the clean predictions as the clean truth does, the noisy one lower
    before = metrics.coco_map(noisy, pred).map_50_95
    after = metrics.coco_map(result.dataset, pred).map_50_95
    assert after > before
    assert after == pytest.approx(metrics.coco_map(clean, pred).map_50_95)
    added = [c.new_row for c in result.changes if c.action == "add"]
    src = result.dataset.annotations.source
    assert src is not None and len(added) == 2 and all(src[r] == "human" for r in added)


def test_rejected_and_skipped_change_nothing_and_are_logged(planted: dict[str, Any]) -> None:
    findings, noisy = planted["findings"], planted["noisy"]
    decisions = {f["rank"]: Decision("rejected" if i % 2 else "skipped") for i, f in enumerate(findings)}
    decisions.pop(findings[-1]["rank"])
    result = apply_decisions(noisy, findings, decisions)
    assert result.dataset.annotations.label.tolist() == noisy.annotations.label.tolist()
    assert np.array_equal(result.dataset.annotations.box, noisy.annotations.box)
    assert [c.outcome for c in result.changes] == ["rejected" if i % 2 else "skipped" for i in range(len(findings) - 1)]
    assert result.n_pending == 1
    counts = review_counts(findings, decisions)
    assert counts["counts"]["pending"] == 1 and counts["n_decided"] == len(findings) - 1


def test_the_input_truth_and_findings_are_not_changed(planted: dict[str, Any]) -> None:
    findings, noisy = planted["findings"], planted["noisy"]
    before = copy.deepcopy(findings)
    labels, boxes = noisy.annotations.label.copy(), noisy.annotations.box.copy()
    apply_decisions(noisy, findings, {f["rank"]: Decision("accepted") for f in findings})
    assert findings == before
    assert np.array_equal(noisy.annotations.label, labels) and np.array_equal(noisy.annotations.box, boxes)


def _tiny() -> Dataset:
    """3 images; image 0: a cat (row 0) and a dog (row 1); image 1: a cat (row 2); image 2: nothing. Keypoints
    (2 per object, the cat's second unlabelled), COCO ids and areas as the COCO reader keeps them."""
    schema = LabelSchema.from_names(["cat", "dog", "bird"], task=Task.KEYPOINTS)
    kp = np.array([[[2, 2, 2], [0, 0, 0]], [[12, 12, 1], [14, 14, 2]], [[3, 3, 2], [4, 4, 2]]], np.float64)
    ann = Annotations(image=[0, 0, 1], label=[0, 1, 0], box=[[1.0, 1, 5, 5], [10, 10, 15, 15], [2, 2, 6, 6]],
                      keypoints=kp, extra={"coco_id": np.array([11, 12, 13]), "area": np.array([16.0, 25, 16])})
    images = Images(path=["a.png", "b.png", "c.png"], width=[20, 20, 20], height=[20, 20, 20],
                    extra={"coco_id": np.array([1, 2, 3])})
    return Dataset(schema, images, ann)


def _f(rank: int, type: str, image: int, ann: int | None, cls: str | None, *, sug_class: str | None = None,
       box: list[float] | None = None, kp: list[list[float | None]] | None = None, text: str = "") -> dict[str, Any]:
    return {"rank": rank, "image_id": image + 1, "annotation_id": None if ann is None else 11 + ann, "type": type,
            "score": 0.5, "file_name": "abc"[image] + ".png", "class": cls, "reason": "",
            "suggestion": {"class": sug_class, "box": None, "box_xyxy": box, "keypoints": kp, "text": text},
            "image_row": image, "annotation_row": ann}


def test_each_type_on_hand_made_cases() -> None:
    ds = _tiny()
    findings = [
        _f(1, "wrong_class", 0, 0, "cat", sug_class="dog"),  # the reviewer picks bird instead
        _f(2, "missing", 2, None, "bird", sug_class="bird", box=[1, 1, 4, 4], kp=[[2, 2, 0.9], [None, None, None]]),
        _f(3, "low_iou", 1, 2, "cat", kp=[[5, 5, 0.8], [6, 6, 0.7]]),  # keypoints: moved, visibility kept
        _f(4, "ambiguous", 0, 1, "dog", sug_class="cat"),  # accepted without a class: nothing
        _f(5, "zero_area_box", 0, 1, "dog", text="redraw the box"),  # a rule check without a box
        _f(6, "mask_box_mismatch", 0, 1, "dog", box=[9, 9, 16, 16]),  # a rule check with a box
        _f(7, "extra", 1, 2, "cat"),  # rejected
    ]
    decisions = {1: Decision("accepted", label="bird"), 2: Decision("accepted"), 3: Decision("accepted"),
                 4: Decision("accepted"), 5: Decision("accepted"), 6: Decision("accepted"), 7: Decision("rejected")}
    r = apply_decisions(ds, findings, decisions)
    out = r.dataset.annotations
    assert [(c.key, c.outcome, c.action) for c in r.changes] == [
        (1, "applied", "relabel"), (2, "applied", "add"), (3, "applied", "move_keypoints"),
        (4, "not_applicable", "none"), (5, "not_applicable", "none"), (6, "applied", "move_box"),
        (7, "rejected", "none")]
    assert out.image.tolist() == [0, 0, 1, 2] and out.label.tolist() == [2, 1, 0, 2]
    assert out.box is not None and out.keypoints is not None and out.source is not None
    assert out.box[1].tolist() == [9, 9, 16, 16] and out.box[3].tolist() == [1, 1, 4, 4]
    # low_iou keypoints: the labelled ones moved, v kept (2 and 2)
    assert out.keypoints[2].tolist() == [[5, 5, 2], [6, 6, 2]]
    # the added bird: v 2 where the model gave a position, (0, 0, 0) where it gave none; a new id, no area yet
    assert out.keypoints[3].tolist() == [[2, 2, 2], [0, 0, 0]]
    assert out.source[3] == "human" and out.extra["coco_id"][3] == 14 and np.isnan(out.extra["area"][3])
    # the moved box's area is recomputed by writers; the others keep the file's
    assert np.isnan(out.extra["area"][1]) and out.extra["area"][[0, 2]].tolist() == [16, 16]
    assert r.changes[1].new_row == 3 and r.changes[0].new_row == 0


def test_two_accepted_findings_on_one_annotation() -> None:
    ds = _tiny()
    relabel = _f(1, "wrong_class", 0, 1, "dog", sug_class="cat")
    move = _f(2, "low_iou", 0, 1, "dog", box=[9, 9, 16, 16])
    remove = _f(3, "extra", 0, 1, "dog")
    both = apply_decisions(ds, [relabel, move], {1: Decision("accepted"), 2: Decision("accepted")})
    assert [c.outcome for c in both.changes] == ["applied", "applied"]  # different fields: both applied
    assert both.dataset.annotations.label[1] == 0 and both.dataset.annotations.box[1].tolist() == [9, 9, 16, 16]
    clash = apply_decisions(ds, [relabel, move, remove], {1: Decision("accepted"), 3: Decision("accepted")})
    assert [c.outcome for c in clash.changes] == ["conflict", "conflict"]
    assert "3" in clash.changes[0].detail and "1" in clash.changes[1].detail
    assert clash.dataset.annotations.label.tolist() == ds.annotations.label.tolist()
    assert clash.dataset.n_annotations == 3
    other = _f(4, "ambiguous", 0, 1, "dog", sug_class="cat")
    two_classes = apply_decisions(ds, [relabel, other],
                                  {1: Decision("accepted"), 4: Decision("accepted", label="bird")})
    assert [c.outcome for c in two_classes.changes] == ["conflict", "conflict"]


def test_a_box_is_not_moved_on_an_annotation_outlined_by_a_polygon() -> None:
    ds = shapes(6, seed=0)
    a = ds.annotations
    row = int(np.flatnonzero([p is not None for p in a.polygon.tolist()])[0])  # type: ignore[union-attr]
    f = {"rank": 1, "type": "low_iou", "image_row": int(a.image[row]), "annotation_row": row,
         "file_name": str(ds.images.path[a.image[row]]), "class": ds.schema.names[int(a.label[row])],
         "suggestion": {"class": None, "box_xyxy": [0, 0, 3, 3], "keypoints": None, "text": "move it"}}
    r = apply_decisions(ds, [f], {1: Decision("accepted")})
    assert r.changes[0].outcome == "not_applicable" and "polygon" in r.changes[0].detail
    assert np.array_equal(r.dataset.annotations.box, a.box)


@pytest.mark.parametrize("change", [
    pytest.param(lambda ds: ds.select(np.arange(1, ds.n_annotations)), id="annotation-removed"),
    pytest.param(lambda ds: ds.replace(images=dataclasses.replace(ds.images, path=np.array(
        ["z" + str(p) for p in ds.images.path], object))), id="other-paths"),
    pytest.param(lambda ds: ds.replace(annotations=ds.annotations.with_columns(
        label=(ds.annotations.label + 1) % 3)), id="relabelled"),
    pytest.param(lambda ds: ds.select_images(np.arange(1, ds.n_images)), id="first-image-removed"),
])
def test_findings_for_another_truth_are_refused(planted: dict[str, Any], change: Any) -> None:
    findings, noisy = planted["findings"], planted["noisy"]
    with pytest.raises(InvalidDatasetError, match="another version of the truth"):
        apply_decisions(change(noisy), findings, {})


def test_bad_findings_and_decisions_are_refused() -> None:
    ds = _tiny()
    good = _f(1, "extra", 0, 0, "cat")
    with pytest.raises(FormatError, match=r"findings\[1\] \(rank 1\).*rank"):
        apply_decisions(ds, [good, good], {})
    for score in ("<img src=x onerror=alert(1)>", float("nan"), True, [0.5]):  # shown on the review page
        with pytest.raises(FormatError, match=r"findings\[0\] \(rank 1\).*score.*finite number"):
            apply_decisions(ds, [{**good, "score": score}], {})
    assert apply_decisions(ds, [{**good, "score": None}], {}).n_pending == 1
    with pytest.raises(FormatError, match=r"suggestion\.box_xyxy"):
        apply_decisions(ds, [_f(1, "low_iou", 0, 0, "cat", box=[5, 5, 1, 1])], {})
    with pytest.raises(MaslowError, match="status must be one of"):
        apply_decisions(ds, [good], {1: Decision("maybe")})
    with pytest.raises(MaslowError, match="label applies to wrong_class"):
        apply_decisions(ds, [good], {1: Decision("accepted", label="dog")})
    with pytest.raises(UnknownLabelError, match="horse"):
        apply_decisions(ds, [_f(1, "wrong_class", 0, 0, "cat")], {1: Decision("accepted", label="horse")})
    with pytest.raises(MaslowError, match="rank of a finding, got 9"):
        apply_decisions(ds, [good], {9: Decision("accepted")})


def test_an_out_of_bounds_fix_applies_only_while_the_box_is_out_of_bounds() -> None:
    """The premise of ``box_out_of_bounds`` is checked in the truth given, as ``zero_area_box``'s is: a box that
    lies inside its 20 x 20 image is not moved to the finding's suggestion."""
    ds = _tiny()
    f = _f(1, "box_out_of_bounds", 0, 0, "cat", box=[1, 1, 4, 4], text="clip the box to the image")
    inside = apply_decisions(ds, [f], {1: Decision("accepted")})
    assert inside.changes[0].outcome == "not_applicable" and "not out of bounds" in inside.changes[0].detail
    assert np.array_equal(inside.dataset.annotations.box, ds.annotations.box)
    box = ds.annotations.box.copy()
    box[0] = [1, 1, 24, 5]  # past the right edge: clipped to the suggestion
    out = ds.replace(annotations=ds.annotations.with_columns(box=box))
    moved = apply_decisions(out, [{**f, "suggestion": {**f["suggestion"], "box_xyxy": [1, 1, 20, 5]}}],
                            {1: Decision("accepted")})
    assert moved.changes[0].outcome == "applied" and moved.dataset.annotations.box[0].tolist() == [1, 1, 20, 5]
