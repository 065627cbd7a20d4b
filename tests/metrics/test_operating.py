"""Operating points and the detection confusion matrix: exact against brute force and pycocotools."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.types import obj_array
from maslow.metrics import MatchTable, coco_matches, detection_confusion_matrix, operating_point
from maslow.sample import shapes
from tests.metrics.cocodata import ann, datasets, det, gt_dict, pycoco, random_case, random_keypoint_case
from tests.metrics.simulated import simulate

ALL = {"all": (0.0, 1e5**2)}


# -- brute force: re-run the matching with each threshold applied ----------------------------------------
def _counts(truth: Dataset, pred: Dataset, k_name: str, iou: float, iou_type: str, counted: np.ndarray
            ) -> tuple[int, int, int]:
    """TP, FP, FN of one class; ``counted``: truth rows COCO does not ignore (independent of the predictions)."""
    t_cls = np.asarray(truth.schema.names, dtype=object)[truth.annotations.label]
    p_cls = np.asarray(pred.schema.names, dtype=object)[pred.annotations.label]
    if not np.isin(p_cls, truth.schema.names).any():  # nothing to evaluate: coco_matches can't take that case
        return 0, 0, int((counted & (t_cls == k_name)).sum())
    table = coco_matches(truth, pred, iou_thresholds=[iou], max_dets=[100], area_ranges=ALL, iou_type=iou_type)
    ps, ts = table.pred_status[:, 0], table.truth_status[:, 0]
    assert ((ts != MatchTable.IGNORED) == counted).all()
    # a match to a truth object whose COCO id is 0 (an FP in pycocotools) is a TP for operating points
    hit = (ps == MatchTable.TP) | ((ps == MatchTable.FP) & (table.pred_match[:, 0] >= 0))
    return (int((hit & (p_cls == k_name)).sum()), int(((ps == MatchTable.FP) & ~hit & (p_cls == k_name)).sum()),
            int(((ts == MatchTable.FN) & (t_cls == k_name)).sum()))


def _sweep(truth: Dataset, pred: Dataset, k_name: str, iou: float, iou_type: str = "bbox"
           ) -> list[tuple[float, int, int, int]]:
    """(threshold, TP, FP, FN) for inf and every score of an evaluated prediction of the class, highest first."""
    full = coco_matches(truth, pred, iou_thresholds=[iou], max_dets=[100], area_ranges=ALL, iou_type=iou_type)
    counted = full.truth_status[:, 0] != MatchTable.IGNORED
    score = pred.annotations.score
    assert score is not None
    p_cls = np.asarray(pred.schema.names, dtype=object)[pred.annotations.label]
    ev = (p_cls == k_name) & np.isin(full.pred_status[:, 0], [MatchTable.TP, MatchTable.FP])
    out = []
    for thr in [math.inf, *sorted(set(score[ev].tolist()), reverse=True)]:
        drop = (p_cls == k_name) & (score < thr)
        out.append((thr, *_counts(truth, pred.select(~drop), k_name, iou, iou_type, counted)))
    return out


def _brute(sweep: list[tuple[float, int, int, int]], mode: str, target: float, cost_fp: float, cost_fn: float,
           n_truth: int) -> float:
    if mode == "cost":
        costs = [cost_fp * fp + cost_fn * fn for _, _, fp, fn in sweep]
        best = min(costs)
        return max(thr for (thr, *_), c in zip(sweep, costs, strict=True) if c == best)
    if mode == "precision":
        ok = [thr for thr, tp, fp, _ in sweep if tp + fp and tp / (tp + fp) >= target]
        return min(ok) if ok else math.inf
    if n_truth == 0:
        return math.inf
    ok = [thr for thr, tp, _, _ in sweep if tp / n_truth >= target]
    return max(ok) if ok else min(thr for thr, *_ in sweep)


CASES = [
    pytest.param("cost", None, 1.0, 1.0, id="cost-1-1"),
    pytest.param("cost", None, 1.0, 5.0, id="cost-1-5"),
    pytest.param("cost", None, 3.0, 1.0, id="cost-3-1"),
    pytest.param("precision", 0.8, 1.0, 1.0, id="precision-0.8"),
    pytest.param("recall", 0.6, 1.0, 1.0, id="recall-0.6"),
]


@pytest.mark.parametrize(("mode", "target", "cost_fp", "cost_fn"), CASES)
def test_thresholds_equal_a_brute_force_sweep(mode: str, target: float | None, cost_fp: float, cost_fn: float) -> None:
    # generated COCO cases: crowds, score ties, near-duplicates, empty images, classes absent from one side
    cases = [datasets(*random_case(seed, n_images=10, max_dt=10)) for seed in (1, 2)]
    cases.append((shapes(30, seed=3), simulate(shapes(30, seed=3), seed=3, score_decimals=1)))
    for truth, pred in cases:
        kw: dict[str, Any] = {"cost_fp": cost_fp, "cost_fn": cost_fn}
        if mode != "cost":
            kw[f"target_{mode}"] = target
        op = operating_point(truth, pred, **kw)
        assert op.mode == mode
        for k, name in enumerate(op.class_names):
            sweep = _sweep(truth, pred, name, 0.5)
            n_truth = int(op.n_truth[k])
            want = _brute(sweep, mode, target or 0.0, cost_fp, cost_fn, n_truth)
            assert op.threshold[k] == want, (name, sweep)
            _, tp, fp, fn = next(s for s in sweep if s[0] == want)
            assert (op.tp[k], op.fp[k], op.fn[k]) == (tp, fp, fn)
            assert op.cost[k] == cost_fp * fp + cost_fn * fn


def test_thresholds_for_masks_and_another_iou_equal_brute_force() -> None:
    truth = shapes(20, seed=5)
    sim = simulate(truth, seed=5)
    # masks: each predicted box as a rectangle mask is a different geometry from the truth polygon
    a = sim.annotations
    assert a.box is not None
    rects = [M.from_polygons([[x1, y1, x2, y1, x2, y2, x1, y2]], 120, 160) for x1, y1, x2, y2 in a.box.tolist()]
    pred = sim.replace(annotations=a.with_columns(mask=obj_array(rects)))
    op = operating_point(truth, pred, iou_type="segm", iou_threshold=0.6, cost_fn=2.0)
    for k, name in enumerate(op.class_names):
        want = _brute(_sweep(truth, pred, name, 0.6, "segm"), "cost", 0.0, 1.0, 2.0, int(op.n_truth[k]))
        assert op.threshold[k] == want


def test_thresholds_for_keypoints_equal_brute_force() -> None:
    truth, pred = datasets(*random_keypoint_case(2, n_images=10))
    op = operating_point(truth, pred, iou_type="keypoints", iou_threshold=0.75, cost_fn=3.0)
    assert op.n_pred.sum() > 0
    for k, name in enumerate(op.class_names):
        want = _brute(_sweep(truth, pred, name, 0.75, "keypoints"), "cost", 0.0, 1.0, 3.0, int(op.n_truth[k]))
        assert op.threshold[k] == want


def _tiny() -> tuple[Dataset, Dataset]:
    """One image, 3 truth objects of class a; predictions TP .9, FP .8, TP .7, FP .6, FP .5 (a crowd region too)."""
    gt = gt_dict([(1, 200, 200)], [
        ann(1, [0, 0, 20, 20], id=1), ann(1, [50, 50, 20, 20], id=2), ann(1, [100, 100, 20, 20], id=3),
        ann(1, [150, 0, 40, 40], id=4, iscrowd=1),
    ])
    res = [det(1, [0, 0, 20, 20], 0.9), det(1, [0, 150, 20, 20], 0.8), det(1, [50, 50, 20, 20], 0.7),
           det(1, [30, 150, 10, 10], 0.6), det(1, [60, 150, 10, 10], 0.5),
           det(1, [155, 5, 20, 20], 0.95)]  # inside the crowd region: ignored
    return datasets(gt, res)


@pytest.mark.parametrize(("kw", "threshold", "counts", "met"), [
    pytest.param({}, 0.9, (1, 0, 2), True, id="equal-costs-tie-goes-to-the-highest"),
    pytest.param({"cost_fn": 5.0}, 0.7, (2, 1, 1), True, id="misses-expensive"),
    pytest.param({"cost_fp": 0.0}, 0.7, (2, 1, 1), True, id="false-positives-free-tie-at-the-highest"),
    pytest.param({"target_precision": 0.6}, 0.7, (2, 1, 1), True, id="precision-0.6"),
    pytest.param({"target_precision": 1.0}, 0.9, (1, 0, 2), True, id="precision-1"),
    pytest.param({"target_recall": 0.5}, 0.7, (2, 1, 1), True, id="recall-0.5"),
    pytest.param({"target_recall": 0.9}, 0.5, (2, 3, 1), False, id="recall-unreachable-keeps-all"),
])
def test_hand_computed_operating_points(kw: dict[str, Any], threshold: float, counts: tuple[int, int, int],
                                        met: bool) -> None:
    truth, pred = _tiny()
    op = operating_point(truth, pred, **kw)
    assert op.class_names == ("c1",)
    assert op.n_truth.tolist() == [3] and op.n_pred.tolist() == [5]  # the crowd region and its match left out
    assert op.threshold.tolist() == [threshold]
    assert (int(op.tp[0]), int(op.fp[0]), int(op.fn[0])) == counts
    assert bool(op.met[0]) is met
    tp, fp, fn = counts
    assert op.precision[0] == pytest.approx(tp / (tp + fp))
    assert op.recall[0] == pytest.approx(tp / 3)
    assert op.fbeta[0] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert op.thresholds() == {"c1": threshold}


def test_unreachable_precision_keeps_nothing_and_fbeta_weights_recall() -> None:
    gt = gt_dict([(1, 100, 100)], [ann(1, [0, 0, 20, 20], id=1), ann(1, [50, 50, 20, 20], id=2)])
    truth, pred = datasets(gt, [det(1, [70, 0, 20, 20], 0.9), det(1, [0, 0, 20, 20], 0.8)])
    op = operating_point(truth, pred, target_precision=0.9)
    assert math.isinf(op.threshold[0]) and not op.met[0]
    assert (op.tp[0], op.fp[0], op.fn[0]) == (0, 0, 2) and math.isnan(op.precision[0])
    assert op.to_dict()["classes"][0]["threshold"] is None
    f2 = operating_point(truth, pred, cost_fn=10, beta=2.0)  # keeps both: TP 1, FP 1, FN 1
    assert f2.fbeta[0] == pytest.approx(5 * 1 / (5 * 1 + 4 * 1 + 1))


def test_classes_without_truth_or_predictions() -> None:
    gt = gt_dict([(1, 100, 100)], [ann(1, [0, 0, 20, 20], id=1, cat=1)], cats=(1, 2, 3))
    truth, pred = datasets(gt, [det(1, [0, 0, 20, 20], 0.9, cat=1), det(1, [50, 50, 20, 20], 0.8, cat=2)])
    op = operating_point(truth, pred)
    by = {n: k for k, n in enumerate(op.class_names)}
    assert op.threshold[by["c1"]] == 0.9
    assert math.isinf(op.threshold[by["c2"]]) and op.fp[by["c2"]] == 0  # only false positives: keep none
    assert math.isinf(op.threshold[by["c3"]]) and op.n_pred[by["c3"]] == 0
    assert math.isnan(op.recall[by["c2"]]) and math.isnan(op.fbeta[by["c3"]])
    rec = operating_point(truth, pred, target_recall=0.5)
    assert math.isinf(rec.threshold[by["c2"]]) and not rec.met[by["c2"]]
    assert (op.overall_tp, op.overall_fp, op.overall_fn) == (1, 0, 0) and op.overall_cost == 0.0


@pytest.mark.parametrize("iou_type", ["bbox", "segm", "keypoints"])
def test_no_predictions_at_all_or_of_known_classes(iou_type: str) -> None:
    truth = shapes(12, seed=0)
    a = truth.annotations
    assert a.iscrowd is not None and a.keypoints is not None
    none = truth.select(np.zeros(truth.n_annotations, bool))
    none = none.replace(annotations=none.annotations.with_columns(score=np.zeros(0)))
    sigmas = [0.08] * 3 if iou_type == "keypoints" else None
    op = operating_point(truth, none, iou_type=iou_type, kpt_sigmas=sigmas, cost_fn=2)
    counted = ~a.iscrowd
    if iou_type == "keypoints":
        counted &= (a.keypoints[:, :, 2] > 0).sum(axis=1) > 0  # no labelled keypoint: ignored
    assert op.overall_fn == counted.sum() and op.overall_tp == op.overall_fp == 0
    assert np.isinf(op.threshold).all() and op.overall_cost == 2 * counted.sum()
    if iou_type != "keypoints":
        cm = detection_confusion_matrix(truth, simulate(truth), score_threshold=2.0, iou_type=iou_type)
        n = len(truth.schema.names)
        np.testing.assert_array_equal(cm.matrix[:n, n], np.bincount(a.label[counted], minlength=n))
        assert cm.matrix.sum() == counted.sum()


def test_perfect_predictions_keep_everything() -> None:
    truth = shapes(16, seed=0)
    a = truth.annotations
    assert a.iscrowd is not None
    pred = truth.select(~a.iscrowd)
    pred = pred.replace(annotations=pred.annotations.with_columns(score=np.linspace(0.2, 0.9, pred.n_annotations)))
    op = operating_point(truth, pred, target_recall=1.0)
    assert op.met.all() and op.overall_fn == 0 and op.overall_fp == 0
    assert op.overall_precision == op.overall_recall == op.overall_fbeta == 1.0


def test_result_is_frozen_json_safe_and_tabular() -> None:
    truth = shapes(12, seed=1)
    op = operating_point(truth, simulate(truth, seed=1), cost_fn=5)
    d = json.loads(json.dumps(op.to_dict(), allow_nan=False))
    assert d["mode"] == "cost" and d["cost_fn"] == 5.0 and len(d["classes"]) == 3
    assert d["overall"]["tp"] == sum(c["tp"] for c in d["classes"])
    df = op.to_pandas()
    assert list(df["class"]) == list(op.class_names) and df["cost"].sum() == pytest.approx(op.overall_cost)
    with pytest.raises(ValueError, match="read-only"):
        op.threshold[0] = 0.0


@pytest.mark.parametrize(("kw", "match"), [
    pytest.param({"target_precision": 0.5, "target_recall": 0.5}, "not both", id="two-targets"),
    pytest.param({"cost_fp": -1.0}, "cost_fp must be", id="negative-cost"),
    pytest.param({"cost_fn": math.inf}, "cost_fn must be", id="infinite-cost"),
    pytest.param({"target_precision": 0.0}, r"target_precision must be in \(0.0, 1.0\]", id="precision-0"),
    pytest.param({"target_recall": 1.5}, "target_recall must be", id="recall-1.5"),
    pytest.param({"beta": 0.0}, "beta must be", id="beta-0"),
    pytest.param({"iou_threshold": 1.2}, "iou_threshold must be", id="iou-1.2"),
])
def test_bad_options_are_refused(kw: dict[str, Any], match: str) -> None:
    truth, pred = _tiny()
    with pytest.raises(ValueError, match=match):
        operating_point(truth, pred, **kw)


# -- detection confusion matrix -------------------------------------------------------------------------
def _pycoco_confusion(gt: dict[str, Any], res: list[dict[str, Any]], score_threshold: float) -> np.ndarray:
    cats = [c["id"] for c in gt["categories"]]
    pos = {c: i for i, c in enumerate(cats)}
    kept = [r for r in res if r["score"] >= score_threshold]
    n = len(cats)
    out = np.zeros((n + 1, n + 1), np.int64)
    if not kept:
        for a in gt["annotations"]:
            if not a["iscrowd"]:
                out[pos[a["category_id"]], n] += 1
        return out
    ev = pycoco(gt, kept, summarize=False, useCats=0, iouThrs=np.array([0.5]), maxDets=[1000],
                areaRng=[[0, 1e10]], areaRngLbl=["all"])
    gt_cat = {a["id"]: a["category_id"] for a in gt["annotations"]}
    dt_cat = {i + 1: r["category_id"] for i, r in enumerate(kept)}  # loadRes numbers results from 1
    for e in ev.evalImgs:
        if e is None:
            continue
        for j, d in enumerate(e["dtIds"]):
            if e["dtIgnore"][0, j]:
                continue
            m = int(e["dtMatches"][0, j])
            out[pos[gt_cat[m]] if m else n, pos[dt_cat[d]]] += 1
        for j, g in enumerate(e["gtIds"]):
            if not e["gtIgnore"][j] and not e["gtMatches"][0, j]:
                out[pos[gt_cat[g]], n] += 1
    return out


@pytest.mark.parametrize("seed", range(4))
def test_confusion_matrix_equals_pycocotools_class_agnostic_matching(seed: int) -> None:
    gt, res = random_case(seed, n_images=15, max_dt=12)
    for a in gt["annotations"]:
        a["id"] += 1  # pycocotools records a match to annotation id 0 as none
    truth, pred = datasets(gt, res)
    for thr in (0.0, 0.5):
        cm = detection_confusion_matrix(truth, pred, score_threshold=thr)
        np.testing.assert_array_equal(cm.matrix, _pycoco_confusion(gt, res, thr))


def test_confusion_matrix_cells_by_hand() -> None:
    gt = gt_dict([(1, 200, 200)], [ann(1, [0, 0, 20, 20], id=1, cat=1), ann(1, [50, 50, 20, 20], id=2, cat=2),
                                   ann(1, [100, 100, 20, 20], id=3, cat=3),
                                   ann(1, [150, 150, 40, 40], id=4, cat=1, iscrowd=1)], cats=(1, 2, 3))
    res = [det(1, [0, 0, 20, 20], 0.9, cat=2),      # a c1 object found as c2
           det(1, [50, 50, 20, 20], 0.8, cat=2),    # c2 found as c2
           det(1, [0, 150, 20, 20], 0.7, cat=1),    # a false alarm c1
           det(1, [155, 155, 10, 10], 0.9, cat=3),  # inside the crowd region: left out
           det(1, [100, 100, 20, 20], 0.2, cat=3)]  # below the score threshold: c3 is missed
    truth, pred = datasets(gt, res)
    cm = detection_confusion_matrix(truth, pred, score_threshold=0.5)
    assert cm.labels == ("c1", "c2", "c3", "background")
    np.testing.assert_array_equal(cm.matrix, [[0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]])
    df = cm.to_pandas()
    assert df.loc["c1", "c2"] == 1 and df.loc["background", "c1"] == 1
    assert json.loads(json.dumps(cm.to_dict()))["matrix"][2][3] == 1


def test_confusion_matrix_sums_and_prediction_only_classes() -> None:
    truth = shapes(30, seed=2)
    pred = simulate(truth, seed=2)
    cm = detection_confusion_matrix(truth, pred, score_threshold=0.3)
    a = truth.annotations
    assert a.iscrowd is not None
    n = len(truth.schema.names)
    np.testing.assert_array_equal(cm.matrix[:n].sum(axis=1), np.bincount(a.label[~a.iscrowd], minlength=n))
    assert pred.annotations.score is not None
    kept = np.asarray(pred.annotations.score >= 0.3)
    col = cm.matrix[:, :n].sum(axis=0)
    assert col.sum() <= kept.sum()  # predictions matched to crowd regions are left out
    # a class only the predictions know becomes a column (and a row of zeros)
    from maslow.core.schema import ClassDef

    schema = pred.schema.with_classes((*pred.schema.classes, ClassDef("hexagon", id=9)))
    label = pred.annotations.label.copy()
    label[:3] = 3
    pred2 = pred.replace(schema=schema, annotations=pred.annotations.with_columns(label=label))
    cm2 = detection_confusion_matrix(truth, pred2, score_threshold=0.0)
    assert cm2.class_names[-1] == "hexagon" and cm2.matrix[:, 3].sum() == 3 and cm2.matrix[3].sum() == 0


def test_confusion_matrix_refuses_keypoints_and_unscored_predictions() -> None:
    truth = shapes(4, seed=0)
    with pytest.raises(ValueError, match="iou_type must be 'bbox', 'segm', 'boundary' or 'obb'"):
        detection_confusion_matrix(truth, simulate(truth), iou_type="keypoints")
    from maslow.errors import InvalidDatasetError

    with pytest.raises(InvalidDatasetError, match="must carry scores"):
        detection_confusion_matrix(truth, truth)


# -- classification: one-vs-rest thresholds on per-class probabilities ------------------------------------
def _classification(seed: int, n: int = 120) -> tuple[Dataset, Dataset]:
    from maslow.core.schema import LabelSchema
    from maslow.core.tables import Annotations, Images

    rng = np.random.default_rng(seed)
    images = Images(path=obj_array([f"{i}.jpg" for i in range(n)]), width=np.ones(n, np.int64),
                    height=np.ones(n, np.int64))
    truth = Dataset(LabelSchema.from_names(["cat", "dog", "bird"], task="classification"), images,
                    Annotations(image=np.arange(n), label=rng.integers(0, 3, n)))
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), truth.annotations.label] += 1.5
    probs = np.round(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 2)  # rounded: many ties
    # the prediction schema lists the classes in another order: columns follow pred.schema.names
    order = [2, 0, 1]
    pred_schema = LabelSchema.from_names(["bird", "cat", "dog"], task="classification")
    pred = Dataset(pred_schema, images, Annotations(image=np.arange(n), label=np.argmax(probs[:, order], 1),
                                                    extra={"probs": probs[:, order]}))
    return truth, pred


@pytest.mark.parametrize(("mode", "target", "cost_fp", "cost_fn"), CASES)
def test_classification_thresholds_equal_a_sweep_and_scikit_learn(mode: str, target: float | None, cost_fp: float,
                                                                  cost_fn: float) -> None:
    from sklearn.metrics import precision_recall_curve

    truth, pred = _classification(0)
    kw: dict[str, Any] = {"cost_fp": cost_fp, "cost_fn": cost_fn}
    if mode != "cost":
        kw[f"target_{mode}"] = target
    op = operating_point(truth, pred, **kw)
    assert op.class_names == ("cat", "dog", "bird") and op.iou_type == "classification"
    probs = np.asarray(pred.annotations.extra["probs"])
    for k, name in enumerate(op.class_names):
        y = truth.annotations.label == k
        s = probs[:, pred.schema.names.index(name)]
        sweep = [(t, int((y & (s >= t)).sum()), int((~y & (s >= t)).sum()), int((y & (s < t)).sum()))
                 for t in [math.inf, *sorted(set(s.tolist()), reverse=True)]]
        want = _brute(sweep, mode, target or 0.0, cost_fp, cost_fn, int(y.sum()))
        assert op.threshold[k] == want
        assert op.n_truth[k] == y.sum() and op.n_pred[k] == len(y)
        if math.isfinite(want):
            prec, rec, thr = precision_recall_curve(y, s)
            i = int(np.flatnonzero(thr == want)[0])
            assert (op.precision[k], op.recall[k]) == pytest.approx((prec[i], rec[i]))


def test_classification_needs_probabilities_and_one_label_per_image() -> None:
    from maslow.errors import InvalidDatasetError

    truth, pred = _classification(1, n=10)
    no_probs = pred.replace(annotations=pred.annotations.with_columns(extra={}))
    with pytest.raises(InvalidDatasetError, match=r"extra\['probs'\]: per-class probabilities must be an \(10, 3\)"):
        operating_point(truth, no_probs)
    with pytest.raises(InvalidDatasetError, match="pred image 9 must have exactly one label, got 0"):
        operating_point(truth, pred.select(np.arange(9)))


# -- an independent reference: pycocotools' greedy matching written out, re-run at every threshold ----------
def _ref_xywh(ds: Dataset) -> np.ndarray:
    """Boxes as pycocotools reads them: the COCO ``[x, y, w, h]`` as read where it still fits the xyxy box."""
    b = ds.annotations.box
    assert b is not None
    out: np.ndarray = np.c_[b[:, :2], b[:, 2:] - b[:, :2]]
    raw = ds.annotations.extra.get("coco_bbox")
    if raw is not None:
        raw = np.asarray(raw, np.float64)
        same = (raw[:, :2] == b[:, :2]).all(1) & (raw[:, :2] + raw[:, 2:] == b[:, 2:]).all(1)
        out[same] = raw[same]
    return out


def _ref_iou(d: np.ndarray, g: np.ndarray, crowd: bool) -> float:
    w = min(d[0] + d[2], g[0] + g[2]) - max(d[0], g[0])
    h = min(d[1] + d[3], g[1] + g[3]) - max(d[1], g[1])
    inter = w * h if w > 0 and h > 0 else 0.0
    return float(inter / (d[2] * d[3] if crowd else d[2] * d[3] + g[2] * g[3] - inter)) if inter else 0.0


def _ref_greedy(dets: list[tuple[float, np.ndarray]], gts: list[tuple[np.ndarray, bool]], iou: float) -> list[int]:
    """pycocotools' evaluateImg: dets (score, xywh) and gts (xywh, crowd) in file order; the gt index each det
    matched (-1: none). Dets by score (stable), gts non-crowd first; a crowd region takes any number of dets."""
    g_order = sorted(range(len(gts)), key=lambda j: gts[j][1])
    taken = [False] * len(gts)
    out = [-1] * len(dets)
    for i in sorted(range(len(dets)), key=lambda i: -dets[i][0]):
        best, m = min(iou, 1 - 1e-10), -1
        for j in g_order:
            if taken[j] and not gts[j][1]:
                continue
            if m > -1 and not gts[m][1] and gts[j][1]:
                break
            o = _ref_iou(dets[i][1], gts[j][0], gts[j][1])
            if o >= best:
                best, m = o, j
        if m > -1:
            taken[m], out[i] = True, m
    return out


def _ref_counts(truth: Dataset, pred: Dataset, name: str, iou: float, max_dets: int, thr: float
                ) -> tuple[int, int, int]:
    """TP, FP, FN of one class keeping its predictions with ``score >= thr`` (no COCO-id-0 exception)."""
    ta, pa = truth.annotations, pred.annotations
    score, crowd = pa.score, ta.iscrowd
    assert score is not None and crowd is not None
    tb, pb = _ref_xywh(truth), _ref_xywh(pred)
    t_mine = np.asarray(truth.schema.names, dtype=object)[ta.label] == name
    p_mine = (np.asarray(pred.schema.names, dtype=object)[pa.label] == name) & (score >= thr)
    tp = fp = fn = 0
    for im in range(truth.n_images):
        gt_rows = np.flatnonzero(t_mine & (ta.image == im)).tolist()
        dt_rows = sorted(np.flatnonzero(p_mine & (pa.image == im)).tolist(), key=lambda r: -score[r])[:max_dets]
        dt_rows.sort()  # file order again: the greedy sort is stable
        gts = [(tb[r], bool(crowd[r])) for r in gt_rows]
        partner = _ref_greedy([(float(score[r]), pb[r]) for r in dt_rows], gts, iou)
        tp += sum(m > -1 and not gts[m][1] for m in partner)
        fp += partner.count(-1)
        fn += sum(not is_crowd and j not in partner for j, (_, is_crowd) in enumerate(gts))
    return tp, fp, fn


def _ref_sweep(truth: Dataset, pred: Dataset, name: str, iou: float, max_dets: int) -> list[tuple[float, int, int, int]]:
    """(threshold, TP, FP, FN) at inf and at every distinct score of the class, highest first; a threshold that
    changes nothing (its predictions ignored or past maxDets) is left out: the higher one represents it."""
    score = pred.annotations.score
    mine = np.asarray(pred.schema.names, dtype=object)[pred.annotations.label] == name
    out: list[tuple[float, int, int, int]] = []
    for thr in [math.inf, *sorted(set(np.asarray(score)[mine].tolist()), reverse=True)]:
        c = _ref_counts(truth, pred, name, iou, max_dets, thr)
        if not out or out[-1][1:3] != c[:2]:
            out.append((thr, *c))
    return out


def _ref_choice(sweep: list[tuple[float, int, int, int]], mode: str, target: float, cost_fp: float, cost_fn: float
                ) -> tuple[float, bool]:
    """The documented choice and whether it meets the target."""
    n_truth = sweep[0][3]
    if mode == "cost":
        cost = [cost_fp * fp + cost_fn * fn for _, _, fp, fn in sweep]
        return max(t for (t, *_), c in zip(sweep, cost, strict=True) if c == min(cost)), True  # ties: highest
    if mode == "precision":
        ok = [t for t, tp, fp, _ in sweep if tp + fp and tp / (tp + fp) >= target]
        return (min(ok), True) if ok else (math.inf, False)
    ok = [t for t, tp, _, _ in sweep if n_truth and tp / n_truth >= target]  # no truth: keep nothing
    return (max(ok), True) if ok else (sweep[-1][0] if n_truth else math.inf, False)


def _edge_case() -> tuple[Dataset, Dataset]:
    """c1: tied duplicates, a crowd region with a prediction inside; c2: truth only; c3: predictions only;
    c4: all predictions right, one on a truth object whose COCO id is 0; c5: all predictions wrong."""
    gt = gt_dict([(1, 200, 200), (2, 200, 200)], [
        ann(1, [0, 0, 20, 20], cat=1, id=1), ann(1, [40, 0, 20, 20], cat=1, id=2), ann(2, [0, 0, 30, 30], cat=1, id=3),
        ann(1, [100, 100, 60, 60], cat=1, id=4, iscrowd=1), ann(1, [0, 100, 20, 20], cat=2, id=5),
        ann(2, [50, 50, 20, 20], cat=2, id=6), ann(2, [100, 0, 20, 20], cat=4, id=0),
        ann(1, [150, 0, 20, 20], cat=4, id=7), ann(2, [150, 150, 20, 20], cat=5, id=8),
    ], cats=(1, 2, 3, 4, 5))
    res = [det(1, [0, 0, 20, 20], 0.9), det(1, [1, 0, 20, 20], 0.9), det(1, [120, 10, 20, 20], 0.9),
           det(2, [0, 0, 30, 28], 0.5), det(1, [110, 110, 20, 20], 0.95), det(1, [60, 60, 9, 9], 0.9, cat=3),
           det(2, [60, 160, 9, 9], 0.9, cat=3), det(2, [100, 1, 20, 20], 0.3, cat=4), det(1, [150, 0, 20, 21], 0.2, cat=4),
           det(2, [10, 150, 20, 20], 0.8, cat=5), det(2, [150, 100, 20, 20], 0.6, cat=5)]
    return datasets(gt, res)


_REF_OPTIONS = [("cost", 1.0, 1.0), ("cost", 1.0, 5.0), ("cost", 0.0, 1.0), ("cost", 1.0, 0.0), ("cost", 0.0, 0.0),
                ("cost", 1.0, 1e6), ("cost", 1e6, 1.0), ("precision", 0.4, 0.0), ("precision", 0.8, 0.0),
                ("precision", 1.0, 0.0), ("recall", 0.2, 0.0), ("recall", 0.6, 0.0), ("recall", 1.0, 0.0)]


@pytest.mark.parametrize(("case", "iou", "max_dets"), [
    pytest.param(0, 0.5, 100, id="seed0"), pytest.param(1, 0.5, 100, id="seed1-coco-id-0"),
    pytest.param(3, 0.75, 3, id="seed3-iou.75-maxdets3"), pytest.param(8, 0.3, 1, id="seed8-maxdets1"),
    pytest.param(None, 0.5, 100, id="edge-classes"), pytest.param(None, 0.5, 1, id="edge-classes-maxdets1")])
def test_operating_points_equal_an_independent_greedy_matching(case: int | None, iou: float, max_dets: int) -> None:
    truth, pred = (_edge_case() if case is None
                   else datasets(*random_case(case, n_images=8, max_dt=10, crowd_rate=0.2, tie_rate=0.7)))
    sweeps: dict[str, list[tuple[float, int, int, int]]] = {}
    for mode, a, b in _REF_OPTIONS:
        kw: dict[str, Any] = {"cost_fp": a, "cost_fn": b} if mode == "cost" else {f"target_{mode}": a}
        op = operating_point(truth, pred, iou_threshold=iou, max_dets=max_dets, beta=0.5, **kw)
        for k, name in enumerate(op.class_names):
            sweep = sweeps.setdefault(name, _ref_sweep(truth, pred, name, iou, max_dets))
            thr, met = _ref_choice(sweep, mode, a, *(kw.get("cost_fp", 1.0), kw.get("cost_fn", 1.0)))
            _, tp, fp, fn = next(s for s in sweep if s[0] == thr)
            assert (op.threshold[k], bool(op.met[k])) == (thr, met), (mode, a, b, name, sweep)
            assert (op.tp[k], op.fp[k], op.fn[k], op.n_truth[k]) == (tp, fp, fn, sweep[0][3])
            assert op.n_pred[k] == sweep[-1][1] + sweep[-1][2]  # every evaluated (not ignored) prediction
            assert op.cost[k] == kw.get("cost_fp", 1.0) * fp + kw.get("cost_fn", 1.0) * fn
            want = (tp / (tp + fp) if tp + fp else math.nan, tp / (tp + fn) if tp + fn else math.nan,
                    1.25 * tp / (1.25 * tp + 0.25 * fn + fp) if tp + fp + fn else math.nan)
            np.testing.assert_allclose([op.precision[k], op.recall[k], op.fbeta[k]], want, rtol=1e-15)
        assert op.overall_tp == op.tp.sum() and op.overall_fn == op.fn.sum() and op.overall_cost == op.cost.sum()
    if case is None and max_dets > 1:  # the edge case holds what it says
        assert len(sweeps["c2"]) == 1 and sweeps["c2"][0][3] == 2 and sweeps["c3"][0][3] == 0  # truth / preds only
        assert sweeps["c3"][-1][2] == 2 and sweeps["c4"][-1][1:] == (2, 0, 0) and sweeps["c5"][-1][1:] == (0, 2, 1)


def test_a_match_to_a_truth_object_with_coco_id_0_is_a_true_positive() -> None:
    # pycocotools records such a match as none (FP + FN); a threshold decision must not depend on the id
    gt = gt_dict([(1, 100, 100)], [ann(1, [0, 0, 20, 20], id=0), ann(1, [50, 50, 20, 20], id=1)])
    truth, pred = datasets(gt, [det(1, [0, 0, 20, 20], 0.9), det(1, [50, 50, 20, 21], 0.8)])
    op = operating_point(truth, pred, cost_fn=5)
    assert (op.tp[0], op.fp[0], op.fn[0]) == (2, 0, 0) and op.threshold[0] == 0.8 and op.precision[0] == 1.0
    assert operating_point(truth, pred, target_precision=1.0).threshold[0] == 0.8
    cm = detection_confusion_matrix(truth, pred, score_threshold=0.0)  # the confusion matrix agrees
    np.testing.assert_array_equal(cm.matrix, [[2, 0], [0, 0]])


def _ref_confusion(truth: Dataset, pred: Dataset, iou: float, score_threshold: float, max_dets: int | None
                   ) -> tuple[list[str], np.ndarray]:
    """Class-agnostic greedy matching as pycocotools with useCats=0 (gts and dets listed class by class; the
    truth classes here are in category-id order, so schema order is pycocotools' order)."""
    names = list(truth.schema.names) + [n for n in pred.schema.names if n not in truth.schema.names]
    pos = {n: i for i, n in enumerate(names)}
    ta, pa = truth.annotations, pred.annotations
    score, crowd = pa.score, ta.iscrowd
    assert score is not None and crowd is not None
    tb, pb = _ref_xywh(truth), _ref_xywh(pred)
    t_col = [pos[truth.schema.names[v]] for v in ta.label]
    p_col = [pos[pred.schema.names[v]] for v in pa.label]
    n = len(names)
    out = np.zeros((n + 1, n + 1), np.int64)
    for im in range(truth.n_images):
        g_rows = sorted(np.flatnonzero(ta.image == im).tolist(), key=lambda r: (t_col[r], r))
        d_rows = sorted([r for r in np.flatnonzero(pa.image == im).tolist() if score[r] >= score_threshold],
                        key=lambda r: (-score[r], p_col[r], r))[:max_dets]
        d_rows.sort(key=lambda r: (p_col[r], r))
        gts = [(tb[r], bool(crowd[r])) for r in g_rows]
        partner = _ref_greedy([(float(score[r]), pb[r]) for r in d_rows], gts, iou)
        for r, m in zip(d_rows, partner, strict=True):
            if m == -1:
                out[n, p_col[r]] += 1
            elif not gts[m][1]:
                out[t_col[g_rows[m]], p_col[r]] += 1
        for j, r in enumerate(g_rows):
            if not gts[j][1] and j not in partner:
                out[t_col[r], n] += 1
    return names, out


@pytest.mark.parametrize("seed", range(4))
def test_confusion_matrix_equals_an_independent_greedy_matching(seed: int) -> None:
    from maslow.core.schema import ClassDef, LabelSchema

    truth, pred = datasets(*random_case(seed, n_images=10, max_dt=12, crowd_rate=0.2, tie_rate=0.8))
    # predictions in another class order, some of a class only they have
    rng = np.random.default_rng(seed)
    old = list(pred.schema.names)
    new = [old[i] for i in rng.permutation(len(old))] + ["extra"]
    label = np.asarray([new.index(old[v]) for v in pred.annotations.label], np.int64)
    label[rng.random(len(label)) < 0.15] = len(new) - 1
    other = pred.replace(schema=LabelSchema(classes=tuple(ClassDef(name=n) for n in new)),
                         annotations=pred.annotations.with_columns(label=label))
    for p in (pred, other):
        options: list[dict[str, Any]] = [{}, {"score_threshold": 0.0, "max_dets": 2}, {"score_threshold": 1.5},
                                         {"score_threshold": 0.3, "iou_threshold": 0.3}]
        for kw in options:
            cm = detection_confusion_matrix(truth, p, **kw)
            names, want = _ref_confusion(truth, p, kw.get("iou_threshold", 0.5), kw.get("score_threshold", 0.5),
                                         kw.get("max_dets"))
            assert cm.class_names == tuple(names)
            np.testing.assert_array_equal(cm.matrix, want)
