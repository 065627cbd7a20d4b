"""coco_matches' per-object match table against pycocotools 2.0.11's ``evalImgs`` and ``ious``, under options.

For every evaluated (image, class) entry at the table's area range: each prediction's partner, IoU and
status (``dtMatches``, ``dtIgnore``) and each truth object's (``gtMatches``, ``gtIgnore``), at every IoU
threshold; predictions in no entry are ``skipped``. Also: the numpy path (``MASLOW_NATIVE=0``) gives the same
table, and the TP predictions over the non-ignored truth objects of a class are its ``recall`` cell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from maslow.metrics import MatchTable, coco_matches
from tests.metrics.cocodata import (
    ann,
    assert_same,
    datasets,
    det,
    gt_dict,
    pycoco,
    pycoco_params,
    random_case,
    random_keypoint_case,
    random_segm_case,
)

COLUMNS = ("pred_match", "pred_iou", "pred_status", "truth_match", "truth_iou", "truth_status")
OPTIONS: dict[str, dict[str, Any]] = {
    "agnostic": {"use_cats": False},
    "iou-thresholds": {"iou_thresholds": [0.75, 0.0, 0.5, 0.1, 1.0]},
    "areas-without-all": {"area_ranges": {"mid": (100.0, 2000.0), "big": (2000.0, 1e10)}},
    "areas-all-second": {"area_ranges": {"mid": (200.0, 3000.0), "all": (0.0, 1e10)}},
    "short-ladder": {"max_dets": (3, 1)},
    "agnostic-mixed": {"use_cats": False, "max_dets": (2,), "iou_thresholds": [0.5, 0.3],
                       "area_ranges": {"mid": (100.0, 2000.0)}},
}
CASES: dict[str, Callable[[int], tuple[dict[str, Any], list[dict[str, Any]]]]] = {
    "bbox": lambda s: random_case(s, max_dt=20),
    "bbox-crowded": lambda s: random_case(s, tie_rate=1.0, crowd_rate=0.4, empty_rate=0.4),
    "segm": random_segm_case,
    "keypoints": random_keypoint_case,
}


def compare_table(gt: dict[str, Any], res: list[dict[str, Any]], iou_type: str, **opts: Any) -> MatchTable:
    """Assert the match table of ``coco_matches`` equals pycocotools' evalImgs/ious; return it."""
    truth, pred = datasets(gt, res)
    short = len(opts.get("max_dets", (1, 2, 3))) < 3 and iou_type != "keypoints"
    ev = pycoco(gt, res, iou_type, summarize=not short, **pycoco_params(**opts))
    table = coco_matches(truth, pred, iou_type=iou_type, **opts)
    assert_same(ev, table.result, stats=not short)
    # rows: datasets() sorts annotations stably by image row; loadRes numbers the results 1..N in file order
    image_row = {im["id"]: i for i, im in enumerate(gt["images"])}

    def rows(items: list[dict[str, Any]]) -> np.ndarray:
        img = np.array([image_row[x["image_id"]] for x in items], np.int64)
        out = np.empty(len(items), np.int64)
        out[np.argsort(img, kind="stable")] = np.arange(len(items))
        return out

    p_row, t_row = rows(res), rows(gt["annotations"])
    row_of_gt = {a["id"]: int(t_row[i]) for i, a in enumerate(gt["annotations"])}
    id_of_row = {int(t_row[i]): a["id"] for i, a in enumerate(gt["annotations"])}
    names = list(ev.params.areaRngLbl)
    a_rng = list(ev.params.areaRng[names.index("all") if "all" in names else 0])
    assert table.area_range == ("all" if "all" in names else names[0])
    assert table.max_dets == max(ev.params.maxDets)
    cat_ids = None if ev.params.useCats else sorted(c["id"] for c in gt["categories"])
    seen_pred, seen_truth = np.zeros(len(res), bool), np.zeros(len(t_row), bool)
    for e in ev.evalImgs:
        if e is None or list(e["aRng"]) != a_rng:
            continue
        key = e["image_id"], e["category_id"]
        # class-agnostic: pycocotools pools the (image, class) lists in category id order
        gts = ev._gts[key] if cat_ids is None else [g for c in cat_ids for g in ev._gts[e["image_id"], c]]
        dts = ev._dts[key] if cat_ids is None else [d for c in cat_ids for d in ev._dts[e["image_id"], c]]
        # the rows of ious: the predictions by score (stable), cut at maxDets; its columns: the truth in file order
        dt_ids = [dts[i]["id"] for i in np.argsort([-d["score"] for d in dts], kind="mergesort")]
        gt_ids = [g["id"] for g in gts]
        ious = ev.ious[key]
        for j, did in enumerate(e["dtIds"]):
            r = p_row[did - 1]
            seen_pred[r] = True
            for t in range(len(ev.params.iouThrs)):
                gid, ignored = int(e["dtMatches"][t, j]), bool(e["dtIgnore"][t, j])
                assert table.pred_status[r, t] == (MatchTable.IGNORED if ignored else
                                                   MatchTable.TP if gid else MatchTable.FP)
                m = int(table.pred_match[r, t])
                if gid:
                    assert m == row_of_gt[gid]
                # a match to a truth object with COCO id 0 is "none" in dtMatches; maslow keeps the partner
                assert m == -1 or id_of_row[m] == gid
                if m == -1:
                    assert np.isnan(table.pred_iou[r, t])
                else:
                    assert table.pred_iou[r, t] == ious[dt_ids.index(did), gt_ids.index(id_of_row[m])]
        for j, gid in enumerate(e["gtIds"]):
            r = row_of_gt[gid]
            seen_truth[r] = True
            for t in range(len(ev.params.iouThrs)):
                did = int(e["gtMatches"][t, j])
                assert table.truth_status[r, t] == (MatchTable.IGNORED if e["gtIgnore"][j] else
                                                    MatchTable.TP if did else MatchTable.FN)
                assert table.truth_match[r, t] == (p_row[did - 1] if did else -1)
                if did:
                    assert table.truth_iou[r, t] == ious[dt_ids.index(did), gt_ids.index(gid)]
                else:
                    assert np.isnan(table.truth_iou[r, t])
    assert seen_truth.all()
    assert (table.pred_status[~seen_pred] == MatchTable.SKIPPED).all()
    assert (table.pred_match[~seen_pred] == -1).all() and np.isnan(table.pred_iou[~seen_pred]).all()
    return table


def _recall_from_table(table: MatchTable, truth_label: np.ndarray, pred_label: np.ndarray) -> np.ndarray:
    """(T, K) TP predictions over non-ignored truth objects of each class (-1 without any), at the table's
    area range and maxDets: pycocotools' recall cell. (Truth TPs would count a truth object with COCO id 0 that
    gtMatches names as matched while its prediction is an FP; the prediction side is what recall counts.)"""
    labels = table.result.class_labels.tolist()
    out = np.empty((len(table.iou_thresholds), len(labels)))
    for k, lab in enumerate(labels):
        t_in = truth_label == lab if lab >= 0 else np.ones(len(truth_label), bool)
        p_in = pred_label == lab if lab >= 0 else np.ones(len(pred_label), bool)
        n_pos = (table.truth_status[t_in] != MatchTable.IGNORED).sum(axis=0)
        tp = (table.pred_status[p_in] == MatchTable.TP).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, k] = np.where(n_pos > 0, tp / n_pos, -1.0)
    return out


@pytest.mark.parametrize("options", list(OPTIONS))
@pytest.mark.parametrize("case", list(CASES))
def test_match_table_equals_eval_imgs_under_options(case: str, options: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    opts = OPTIONS[options]
    if case == "keypoints" and opts.get("use_cats") is False:
        pytest.skip("keypoints are refused in class-agnostic mode")
    for seed in (0, 1):
        gt, res = CASES[case](seed)
        iou_type = case.split("-")[0]
        table = compare_table(gt, res, iou_type, **opts)
        truth, pred = datasets(gt, res)
        a = table.result.area_names.index(table.area_range)
        recall = _recall_from_table(table, truth.annotations.label, pred.annotations.label)
        np.testing.assert_array_equal(recall, table.result.recall[:, :, a, -1])
        monkeypatch.setenv("MASLOW_NATIVE", "0")
        ref = coco_matches(truth, pred, iou_type=iou_type, **opts)
        monkeypatch.delenv("MASLOW_NATIVE")
        for name in COLUMNS:
            np.testing.assert_array_equal(getattr(table, name), getattr(ref, name), err_msg=name)


def test_match_table_edge_cases_equal_eval_imgs() -> None:
    """COCO id 0 (plain and crowd, in and out of the area range), score and IoU ties, classes on one side only,
    images without truth or predictions, no predictions at all."""
    gt = gt_dict([(1, 100, 100), (2, 100, 100), (3, 50, 50)],
                 [ann(1, [0, 0, 10, 10], id=0), ann(1, [50, 50, 10, 10], id=1), ann(2, [0, 0, 40, 40], id=2, iscrowd=1),
                  ann(2, [60, 60, 10, 10], id=3, cat=3), ann(2, [60, 60, 10, 10], id=4, cat=3)], cats=(1, 2, 3))
    res = [det(1, [0, 0, 10, 10], 0.9), det(1, [0, 0, 50, 50], 0.8), det(1, [50, 50, 10, 10], 0.5),
           det(2, [0, 0, 10, 10], 0.7), det(2, [0, 0, 11, 10], 0.7), det(2, [1, 1, 10, 10], 0.7, cat=2),
           *(det(2, [60, 60, 10, 10], 0.6, cat=3) for _ in range(3))]
    for opts in ({}, {"use_cats": False}, {"area_ranges": {"mid": (50.0, 1e9)}}, {"area_ranges": {"s": (0.0, 50.0)}},
                 {"iou_thresholds": [1.0, 0.0]}, {"max_dets": (1,)}):
        compare_table(gt, res, "bbox", **opts)
    compare_table(gt, [], "bbox")
    crowd0 = gt_dict([(1, 100, 100)], [ann(1, [0, 0, 10, 10], id=0, iscrowd=1)])
    table = compare_table(crowd0, [det(1, [0, 0, 10, 10], 0.9), det(1, [1, 0, 10, 10], 0.9)], "bbox")
    # IoU with a crowd region is over the prediction's area: 1.0 and 0.9; both take the region, the last is kept
    assert (table.pred_status[:, :9] == MatchTable.IGNORED).all() and (table.truth_match[0, :9] == 1).all()
