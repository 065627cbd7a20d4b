"""The functions built on ``coco_matches`` with ``iou_type="boundary"`` and a ``boundary_dilation``:
``operating_point``, ``detection_confusion_matrix``, ``slice_metrics``, ``detection_calibration`` and
``compare_models``.

Two properties: a dilation wider than every image makes each boundary the whole mask, so the boundary IoU is the
mask IoU and every result equals segm's (docs/metrics.md, Boundary IoU); and at the default dilation, on masks
whose outlines are jittered, the results differ from segm's and equal what ``coco_matches``/``coco_map`` with
``iou_type="boundary"`` give when computed directly (at a dilation other than the default, so that the option
is seen to reach the match)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.polygons import Polygons
from maslow.metrics import coco_map, coco_matches
from maslow.metrics._result import MatchTable
from maslow.metrics.calibration import detection_calibration
from maslow.metrics.compare import compare_models
from maslow.metrics.operating import detection_confusion_matrix, operating_point
from maslow.metrics.slices import slice_metrics
from maslow.sample import shapes

WHOLE = 10.0  # 10 image diagonals: every boundary is its whole mask
RATIO = 0.01  # not the default, for the direct computations
IOU = 0.75  # where jittered outlines lose boundary matches


def _jittered(truth: Dataset, seed: int, sigma: float) -> Dataset:
    """The truth's objects with outlines jittered by ``sigma`` pixels, a fifth of them given another class,
    scores in [0, 1]."""
    rng = np.random.default_rng(seed)
    pred = truth.select(~truth.annotations.iscrowd)
    a = pred.annotations
    p = a.polygon
    assert p is not None
    ragged = Polygons(p.xy + rng.normal(0, sigma, p.xy.shape), p.ring_offsets, p.row_offsets, p.null)
    label = a.label.copy()
    swap = rng.random(len(a)) < 0.2
    label[swap] = (label[swap] + 1) % len(truth.schema.names)
    return pred.replace(annotations=a.with_columns(polygon=ragged, mask=None, label=label,
                                                   score=rng.random(len(a))))


@pytest.fixture(scope="module")
def case() -> tuple[Dataset, Dataset, Dataset]:
    truth = shapes(24, seed=0)
    return truth, _jittered(truth, 0, 1.0), _jittered(truth, 1, 0.5)


def _same(a: Any, b: Any) -> None:
    """Two results' ``to_dict()`` equal, but for ``iou_type``."""
    da, db = a.to_dict(), b.to_dict()
    for d in (da, db):
        d.pop("iou_type", None)
    assert da == db


# -- operating_point ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [{"cost_fn": 3.0}, {"target_recall": 0.3}], ids=["cost", "recall"])
def test_operating_point(case: tuple[Dataset, Dataset, Dataset], mode: dict[str, float]) -> None:
    truth, pred, _ = case
    segm = operating_point(truth, pred, iou_threshold=IOU, iou_type="segm", **mode)
    _same(operating_point(truth, pred, iou_threshold=IOU, iou_type="boundary", boundary_dilation=WHOLE, **mode), segm)
    default = operating_point(truth, pred, iou_threshold=IOU, iou_type="boundary", **mode)
    assert default.iou_type == "boundary" and default.overall_tp < segm.overall_tp
    op = operating_point(truth, pred, iou_threshold=IOU, iou_type="boundary", boundary_dilation=RATIO, **mode)
    assert op.overall_tp != default.overall_tp  # the dilation reaches the matching
    # the counts at each chosen threshold, straight from the boundary match table
    table = coco_matches(truth, pred, iou_type="boundary", boundary_dilation=RATIO, iou_thresholds=[IOU],
                         max_dets=[100], area_ranges={"all": (0.0, 1e5**2)})
    status, score = table.pred_status[:, 0], pred.annotations.score
    assert score is not None
    for k, lab in enumerate(op.class_labels.tolist()):
        name = truth.schema.names[lab]
        in_k = pred.annotations.label == pred.schema.names.index(name)
        n_truth = int(((truth.annotations.label == lab) & (table.truth_status[:, 0] != MatchTable.IGNORED)).sum())
        kept = in_k & (score >= op.threshold[k])
        assert (op.n_truth[k], op.tp[k], op.fp[k]) == (
            n_truth, int((kept & (status == MatchTable.TP)).sum()), int((kept & (status == MatchTable.FP)).sum()))
        if "cost_fn" in mode:  # no threshold (a score of the class, or inf) costs less
            costs = [int((in_k & (score >= t) & (status == MatchTable.FP)).sum())
                     + 3.0 * (n_truth - int((in_k & (score >= t) & (status == MatchTable.TP)).sum()))
                     for t in [np.inf, *score[in_k].tolist()]]
            assert op.cost[k] == min(costs)


# -- detection_confusion_matrix -------------------------------------------------------------------------------
def test_confusion_matrix(case: tuple[Dataset, Dataset, Dataset]) -> None:
    truth, pred, _ = case
    segm = detection_confusion_matrix(truth, pred, iou_threshold=IOU, iou_type="segm")
    _same(detection_confusion_matrix(truth, pred, iou_threshold=IOU, iou_type="boundary", boundary_dilation=WHOLE), segm)
    default = detection_confusion_matrix(truth, pred, iou_threshold=IOU, iou_type="boundary")
    assert default.iou_type == "boundary" and not np.array_equal(default.matrix, segm.matrix)
    cm = detection_confusion_matrix(truth, pred, iou_threshold=IOU, iou_type="boundary", boundary_dilation=RATIO)
    assert not np.array_equal(cm.matrix, default.matrix)
    # class-agnostic boundary matching of the predictions scored >= 0.5, counted pair by pair
    score = pred.annotations.score
    assert score is not None
    kept = pred.select(score >= 0.5)
    table = coco_matches(truth, kept, iou_type="boundary", boundary_dilation=RATIO, iou_thresholds=[IOU],
                         max_dets=[kept.n_annotations], area_ranges={"all": (0.0, 1e5**2)}, use_cats=False)
    n = len(truth.schema.names)
    want = np.zeros((n + 1, n + 1), np.int64)
    for j in range(kept.n_annotations):
        i = int(table.pred_match[j, 0])
        if table.pred_status[j, 0] == MatchTable.TP:
            want[truth.annotations.label[i], kept.annotations.label[j]] += 1
        elif table.pred_status[j, 0] == MatchTable.FP:
            want[n, kept.annotations.label[j]] += 1
    for i in range(truth.n_annotations):
        if table.truth_status[i, 0] == MatchTable.FN:
            want[truth.annotations.label[i], n] += 1
    assert cm.matrix.tolist() == want.tolist()


def test_confusion_matrix_still_refuses_keypoints(case: tuple[Dataset, Dataset, Dataset]) -> None:
    truth, pred, _ = case
    with pytest.raises(ValueError, match=r"iou_type must be 'bbox', 'segm', 'boundary' or 'obb' .*got 'keypoints'"):
        detection_confusion_matrix(truth, pred, iou_threshold=IOU, iou_type="keypoints")


# -- slice_metrics --------------------------------------------------------------------------------------------
def test_slice_metrics(case: tuple[Dataset, Dataset, Dataset]) -> None:
    truth, pred, _ = case
    segm = slice_metrics(truth, pred, by="split", n_boot=20, rng=0, iou_type="segm")
    whole = slice_metrics(truth, pred, by="split", n_boot=20, rng=0, iou_type="boundary", boundary_dilation=WHOLE)
    assert whole.value.tolist() == segm.value.tolist() and whole.overall == segm.overall
    assert np.array_equal(whole.samples, segm.samples)
    default = slice_metrics(truth, pred, by="split", n_boot=0, iou_type="boundary")
    assert (default.value < segm.value - 0.05).all()
    sl = slice_metrics(truth, pred, by="split", n_boot=0, iou_type="boundary", boundary_dilation=RATIO)
    assert sl.overall != default.overall
    # each slice's value: coco_map's boundary mAP of its images
    split = np.asarray(truth.images.split)
    for s, value in enumerate(sl.values):
        idx = np.flatnonzero(split == value)
        ref = coco_map(truth.select_images(idx), pred.select_images(idx), iou_type="boundary",
                       boundary_dilation=RATIO)
        assert sl.value[s] == pytest.approx(ref.map_50_95, abs=1e-12)
    assert sl.overall == pytest.approx(coco_map(truth, pred, iou_type="boundary", boundary_dilation=RATIO).map_50_95,
                                       abs=1e-12)


# -- detection_calibration ------------------------------------------------------------------------------------
def test_calibration(case: tuple[Dataset, Dataset, Dataset]) -> None:
    truth, pred, _ = case
    segm = detection_calibration(truth, pred, iou_threshold=IOU, iou_type="segm")
    _same(detection_calibration(truth, pred, iou_threshold=IOU, iou_type="boundary", boundary_dilation=WHOLE), segm)
    default = detection_calibration(truth, pred, iou_threshold=IOU, iou_type="boundary")
    assert default.iou_type == "boundary" and default.ece != segm.ece
    cal = detection_calibration(truth, pred, iou_threshold=IOU, iou_type="boundary", boundary_dilation=RATIO)
    assert cal.ece != default.ece
    # the reliability bins of the TPs and FPs of the boundary match, as scikit-learn computes them
    calibration_curve = pytest.importorskip("sklearn.calibration").calibration_curve
    table = coco_matches(truth, pred, iou_type="boundary", boundary_dilation=RATIO, iou_thresholds=[IOU])
    status, score = table.pred_status[:, 0], pred.annotations.score
    assert score is not None
    rows = (status == MatchTable.TP) | (status == MatchTable.FP)
    prob_true, prob_pred = calibration_curve(status[rows] == MatchTable.TP, score[rows], n_bins=10)
    has = cal.count > 0
    assert cal.n_predictions == int(rows.sum())
    np.testing.assert_allclose(cal.accuracy[has], prob_true, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cal.confidence[has], prob_pred, rtol=0, atol=1e-12)


# -- compare_models -------------------------------------------------------------------------------------------
def test_compare_models(case: tuple[Dataset, Dataset, Dataset]) -> None:
    truth, a, b = case
    segm = compare_models(truth, a, b, iou_type="segm", n_bootstrap=10)
    whole = compare_models(truth, a, b, iou_type="boundary", n_bootstrap=10, boundary_dilation=WHOLE)
    _same(whole, segm)
    assert np.array_equal(whole.samples, segm.samples, equal_nan=True)
    default = compare_models(truth, a, b, iou_type="boundary", n_bootstrap=0)
    assert default.stats_a[0] < segm.stats_a[0] - 0.05
    c = compare_models(truth, a, b, iou_type="boundary", n_bootstrap=10, boundary_dilation=RATIO)
    assert c.stats_a[0] != default.stats_a[0]
    for stats, pred in ((c.stats_a, a), (c.stats_b, b)):
        ref = coco_map(truth, pred, iou_type="boundary", boundary_dilation=RATIO)
        np.testing.assert_array_equal(stats, np.where(ref.stats < 0, np.nan, ref.stats))


def test_a_bad_dilation_is_refused(case: tuple[Dataset, Dataset, Dataset]) -> None:
    truth, a, b = case
    for call in (lambda: operating_point(truth, a, iou_type="boundary", boundary_dilation=-1.0),
                 lambda: detection_confusion_matrix(truth, a, iou_type="boundary", boundary_dilation=-1.0),
                 lambda: slice_metrics(truth, a, by="split", n_boot=0, iou_type="boundary", boundary_dilation=-1.0),
                 lambda: detection_calibration(truth, a, iou_type="boundary", boundary_dilation=-1.0),
                 lambda: compare_models(truth, a, b, iou_type="boundary", n_bootstrap=0, boundary_dilation=-1.0)):
        with pytest.raises(ValueError, match="boundary_dilation must be a finite number >= 0"):
            call()


def test_the_result_records_its_dilation() -> None:
    truth = shapes(8, seed=3)
    pred = _jittered(truth, 3, 1.0)
    r = coco_map(truth, pred, iou_type="boundary", boundary_dilation=RATIO)
    assert r.boundary_dilation == RATIO and r.to_dict()["boundary_dilation"] == RATIO
    plain = coco_map(truth, pred, iou_type="segm", boundary_dilation=RATIO)  # read only by "boundary"
    assert plain.boundary_dilation is None and "boundary_dilation" not in plain.to_dict()
