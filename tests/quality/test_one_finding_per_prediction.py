"""A prediction of the model is one finding at most: the box of a ``low_iou`` annotation (its match), or a ``missing``
object, never both (accepting both labelled one object twice: the annotation moved onto the prediction, and the
prediction added beside it).

The match of an annotation is the same-class prediction it owns (the prediction's best overlap) overlapping it most,
when they overlap at all (IoU >= 0.1, ``_consensus_det._MIN_LINK``); below that the two are unrelated: no
``low_iou``, and the prediction may be ``missing``.
"""

from __future__ import annotations

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.quality import find_label_issues
from maslow.quality.consensus import ObjectScores, object_scores
from maslow.quality.records import issue_records
from tests.quality.test_consensus_keypoints import plant, simulate, triangles

TRIANGLE_SIGMAS = [0.079, 0.072, 0.072]


def _both(s: ObjectScores) -> np.ndarray:
    """The truth rows whose low_iou prediction is also scored missing."""
    low = s.annotation["low_iou"]
    rows = np.flatnonzero((low > 0) & (s.suggested_pred >= 0))
    return rows[s.missing[s.suggested_pred[rows]] > 0]


def _images(m: int) -> Images:
    return Images(path=obj_array([f"{i}.jpg" for i in range(m)]), width=np.full(m, 200), height=np.full(m, 200))


def _case(second: list[float], second_label: int = 1) -> tuple[Dataset, Dataset]:
    """20 images of one class-0 object at [20, 20, 80, 80], each found by the model; on image 0 the model's
    class-0 box is ``[60, 20, 120, 80]`` and another prediction (``second``, of class ``second_label``) sits on the
    annotation."""
    m = 20
    schema = LabelSchema.from_names(["a", "b"])
    box = np.tile([20.0, 20, 80, 80], (m, 1))
    truth = Dataset(schema, _images(m), Annotations(image=np.arange(m), label=np.zeros(m, np.int64), box=box))
    p_box = np.r_[box, [second]]
    p_box[0] = [50.0, 20, 110, 80]
    pred = Dataset(schema, _images(m), Annotations.sort_rows(
        image=np.r_[np.arange(m), 0], label=np.r_[np.zeros(m, np.int64), second_label], box=p_box,
        score=np.r_[np.linspace(0.8, 0.95, m), 0.9]))
    return truth, pred


def test_a_low_iou_prediction_beside_another_class_is_not_also_missing() -> None:
    """The annotation's best overlap is a prediction of another class (so the pair with its own class's box is not
    mutual): that box was reported as the low_iou suggestion and again as a missing object."""
    truth, pred = _case([22.0, 22, 80, 80])
    s = object_scores(truth, pred, iou_type="bbox")
    p = int(s.suggested_pred[0])
    assert pred.annotations.box[p].tolist() == [50.0, 20, 110, 80]
    assert s.annotation["low_iou"][0] > 0.2
    assert s.missing[p] == 0.0
    issues = issue_records(find_label_issues(truth, pred, iou_type="bbox", min_score=0.0), truth)
    low = [tuple(f["suggestion"]["box_xyxy"]) for f in issues if f["type"] == "low_iou"]
    miss = [tuple(f["suggestion"]["box_xyxy"]) for f in issues if f["type"] == "missing"]
    assert low and not set(low) & set(miss)


def test_an_unrelated_same_class_prediction_is_missing_not_the_annotations_box() -> None:
    """A same-class prediction overlapping the annotation by IoU < 0.1 is no move of its box: it was both (move the
    box there, and add an object there)."""
    truth, pred = _case([22.0, 22, 80, 80])
    b = pred.annotations.box.copy()
    b[np.flatnonzero((pred.annotations.image == 0) & (pred.annotations.label == 0))[0]] = [75.0, 20, 135, 80]
    pred = pred.replace(annotations=pred.annotations.with_columns(box=b))
    s = object_scores(truth, pred, iou_type="bbox")
    p = int(np.flatnonzero((pred.annotations.image == 0) & (pred.annotations.label == 0))[0])
    assert s.annotation["low_iou"][0] == 0.0 and s.suggested_pred[0] == -1
    assert s.missing[p] > 0.5


@pytest.mark.parametrize("seed", range(4))
def test_no_prediction_is_both_on_dense_noise(seed: int) -> None:
    """Random images crowded with boxes, predictions jittered, relabelled and shifted: no prediction behind a
    low_iou score has a missing one (the old scoring had both for about one in twenty low_iou rows here)."""
    rng = np.random.default_rng(seed)
    m, k = 40, 3
    t_img = np.repeat(np.arange(m), rng.integers(2, 9, m))
    xy = rng.uniform(0, 150, (len(t_img), 2))
    t_box = np.c_[xy, xy + rng.uniform(15, 50, (len(t_img), 2))]
    t_lab = rng.integers(0, k, len(t_img))
    shift = rng.normal(0, 1, (len(t_img), 2)) * (t_box[:, 2:] - t_box[:, :2]) * 0.4
    p_box = t_box + np.c_[shift, shift]
    p_lab = np.where(rng.random(len(t_img)) < 0.2, rng.integers(0, k, len(t_img)), t_lab)
    schema = LabelSchema.from_names([f"c{i}" for i in range(k)])
    truth = Dataset(schema, _images(m), Annotations(image=t_img, label=t_lab, box=t_box))
    pred = Dataset(schema, _images(m), Annotations.sort_rows(image=t_img, label=p_lab, box=p_box,
                                                             score=rng.uniform(0.3, 1.0, len(t_img))))
    s = object_scores(truth, pred, iou_type="bbox")
    assert (s.annotation["low_iou"] > 0).sum() > 20
    assert _both(s).tolist() == []


def test_keypoints_far_off_are_not_also_a_missing_object() -> None:
    """Triangles whose predicted keypoints are all far from the truth's (OKS near 0) on the same box: each was a
    low_iou (move the keypoints) and a missing object (add the model's triangle)."""
    clean = triangles(120)
    pred, _ = simulate(clean, np.asarray(TRIANGLE_SIGMAS), p_miss=0.0, fp_per_image=0.0)
    noisy, kind, _ = plant(clean, 6, 0, 0, 0, n_off=3, swap=(1, 2))
    s = object_scores(noisy, pred, iou_type="keypoints", kpt_sigmas=TRIANGLE_SIGMAS)
    assert _both(s).tolist() == []
    issues = find_label_issues(noisy, pred, iou_type="keypoints", kpt_sigmas=TRIANGLE_SIGMAS)
    moved = set(np.flatnonzero(kind == 1).tolist())
    low = set(issues.of_type("low_iou").annotation.tolist()) & moved
    extra = set(issues.of_type("extra").annotation.tolist()) & moved
    assert low | extra == moved  # each moved object is reported once, as a keypoint or as an extra problem


def test_oriented_boxes_one_finding_per_prediction() -> None:
    from maslow.sample import oriented, oriented_predictions

    truth = oriented(40, size=300, seed=2)
    pred = oriented_predictions(truth, seed=2, p_miss=0.05, p_swap=0.2, jitter=0.25, angle_jitter=0.4,
                                fp_per_image=0.5)
    s = object_scores(truth, pred, iou_type="obb")
    assert (s.annotation["low_iou"] > 0).any()
    assert _both(s).tolist() == []
