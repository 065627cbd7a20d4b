"""maslow.metrics.coco_map / coco_matches against pycocotools 2.0.11: generated cases cell for cell, the shared
fixture with its expected numbers, the match table against pycocotools' evalImgs, edge cases and errors."""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import maslow.metrics.coco
from maslow.core.tables import Annotations
from maslow.errors import InvalidDatasetError, KeypointSigmasError
from maslow.metrics import MapResult, MatchTable, coco_map, coco_matches
from maslow.sample import shapes
from tests.conftest import shared_path
from tests.metrics.cocodata import (
    ann,
    assert_same,
    check,
    datasets,
    det,
    gt_dict,
    pycoco,
    random_case,
    random_keypoint_case,
    random_segm_case,
)

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "max-dets-1-3-5": {"max_dets": (1, 3, 5)},
    "max-dets-unsorted-4": {"max_dets": (10, 1, 100, 5)},
    "max-dets-2": {"max_dets": (2, 4)},
    "class-agnostic": {"use_cats": False},
    "area-ranges": {"area_ranges": {"all": (0, 1e10), "small": (0, 400), "medium": (400, 1600),
                                    "large": (1600, 1e10), "band": (100, 900)}},
    "area-no-all": {"area_ranges": {"small": (0, 400), "large": (400, 1e10)}},
    "iou-thresholds": {"iou_thresholds": [0.3, 0.5, 0.75, 0.99, 1.0]},
    "recall-unsorted": {"recall_thresholds": [0.0, 0.5, 0.2, 0.9, 1.0, 0.05]},
    "recall-repeated": {"recall_thresholds": [0.3, 0.3, 0.0, 1.0, 1.0]},
    "iou-unsorted-low": {"iou_thresholds": [0.75, 0.0, 0.5, 0.1]},
    "max-dets-repeated": {"max_dets": (5, 5, 10, 100)},
}


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
def test_random_bbox_cases_equal_pycocotools(seed: int, variant: str) -> None:
    gt, res = random_case(seed, max_dt=6 if variant.startswith("max-dets") else 14)
    check(gt, res, **VARIANTS[variant])


@pytest.mark.parametrize("seed", range(6))
def test_random_segm_cases_equal_pycocotools(seed: int) -> None:
    check(*random_segm_case(seed), "segm")
    check(*random_segm_case(seed, bbox_in_results=True), "segm", pred_area="box")


@pytest.mark.parametrize("seed", range(6))
def test_random_keypoint_cases_equal_pycocotools(seed: int) -> None:
    check(*random_keypoint_case(seed), "keypoints")
    check(*random_keypoint_case(seed), "keypoints", max_dets=(1, 5), area_ranges={"all": (0, 1e10)})


def test_class_order_follows_category_ids() -> None:
    gt, res = random_case(4)
    gt["categories"] = gt["categories"][::-1]  # schema order is not id order
    r, _ = check(gt, res)
    truth, _ = datasets(gt, res)
    ids = [truth.schema.classes[i].id for i in r.class_labels.tolist()]
    assert ids == sorted(ids) and r.class_names == tuple(f"c{i}" for i in ids)


@pytest.mark.slow
def test_many_random_cases_equal_pycocotools() -> None:
    for seed in range(100, 400):
        gt, res = random_case(seed, n_images=25, max_dt=40, n_cats=6)
        check(gt, res)
        check(gt, res, max_dets=(1, 5, 20), use_cats=bool(seed % 2))
    for seed in range(100, 160):
        check(*random_segm_case(seed), "segm")
        check(*random_keypoint_case(seed), "keypoints")


@pytest.mark.shared
def test_shared_coco_eval_case_expected_numbers() -> None:
    folder = shared_path("od_metrics_fixture", "annotations", "coco_eval_case")
    gt = json.loads((folder / "gts" / "sampled_gts_bbox_area.json").read_text())
    results = json.loads((folder / "cocoapi_results.json").read_text())
    r, ev = check(gt, results)
    expected = [0.503647, 0.696973, 0.571667, 0.593252, 0.557991, 0.489363, 0.386813, 0.593680, 0.595353,
                0.654764, 0.603130, 0.553744]
    assert r.stats.tolist() == pytest.approx(expected, abs=1e-6)
    assert (r.map_50_95, r.map_50, r.mar_100) == pytest.approx((0.503647, 0.696973, 0.595353), abs=1e-6)
    # the dets file holds the same detections as a COCO dict
    dets = json.loads((folder / "dets" / "sampled_bbox_results.json").read_text())["annotations"]
    assert_same(ev, coco_map(*datasets(gt, dets)))


@pytest.mark.parametrize("iou_type", ["bbox", "segm", "keypoints"])
def test_files_read_by_maslow_equal_pycocotools(iou_type: str, tmp_path: Path) -> None:
    from maslow.io.coco import read_coco
    from maslow.io.coco_results import read_coco_predictions

    make = {"bbox": random_case, "segm": random_segm_case, "keypoints": random_keypoint_case}[iou_type]
    for seed in range(3):
        gt, res = make(seed)
        (tmp_path / "gt.json").write_text(json.dumps(gt))
        (tmp_path / "dt.json").write_text(json.dumps(res))
        truth = read_coco(tmp_path / "gt.json")
        pred = read_coco_predictions(tmp_path / "dt.json", like=truth)
        assert_same(pycoco(gt, res, iou_type), coco_map(truth, pred, iou_type=iou_type))


def test_full_precision_files_read_by_maslow_equal_pycocotools(tmp_path: Path) -> None:
    """Model boxes carry every digit (x2 - x1 != w): the readers keep the boxes as read, so IoUs match the bit."""
    from maslow.core import boxes as B
    from maslow.io.coco import read_coco
    from maslow.io.coco_results import read_coco_predictions

    # an IoU on the 0.5 threshold: pycocotools' areas w * h from the file give 0.49999999999999983 (no match),
    # widths recomputed as x2 - x1 would give 0.5 (a match)
    gt = {"images": [{"id": 1, "width": 100, "height": 20, "file_name": "a.jpg"}],
          "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 61.7,
                           "bbox": [36.51101682448286, 0.0, 6.169268698941247, 10.0]}]}
    edge = [{"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [38.56743972412994, 0.0, 6.169268698941247, 10.0]}]
    for gt_, res in [*(random_case(seed, decimals=15) for seed in range(3)), (gt, edge)]:
        (tmp_path / "gt.json").write_text(json.dumps(gt_))
        (tmp_path / "dt.json").write_text(json.dumps(res))
        truth = read_coco(tmp_path / "gt.json")
        pred = read_coco_predictions(tmp_path / "dt.json", like=truth)
        assert B.COCO_BBOX in truth.annotations.extra and B.COCO_BBOX in pred.annotations.extra
        assert_same(pycoco(gt_, res, "bbox"), coco_map(truth, pred))
    def without(d: Any) -> Any:
        return d.replace(annotations=d.annotations.with_columns(extra={}))

    assert coco_map(truth, pred).map_50 == 0.0 and coco_map(without(truth), without(pred)).map_50 > 0.99


@pytest.mark.shared
def test_shared_coco_eval_case_read_by_maslow() -> None:
    from maslow.io.coco import read_coco
    from maslow.io.coco_results import read_coco_predictions

    folder = shared_path("od_metrics_fixture", "annotations", "coco_eval_case")
    truth = read_coco(folder / "gts" / "sampled_gts_bbox_area.json")
    pred = read_coco_predictions(folder / "cocoapi_results.json", like=truth)
    gt = json.loads((folder / "gts" / "sampled_gts_bbox_area.json").read_text())
    results = json.loads((folder / "cocoapi_results.json").read_text())
    assert_same(pycoco(gt, results), coco_map(truth, pred))


@pytest.mark.parametrize("iou_type", ["bbox", "segm", "keypoints"])
def test_match_table_equals_pycocotools_eval_imgs(iou_type: str) -> None:
    make = {"bbox": lambda s: random_case(s, max_dt=30), "segm": random_segm_case, "keypoints": random_keypoint_case}
    for seed in range(3):
        gt, res = make[iou_type](seed)
        _compare_table(gt, res, iou_type)


def _compare_table(gt: dict[str, Any], res: list[dict[str, Any]], iou_type: str) -> None:
    truth, pred = datasets(gt, res)
    ev = pycoco(gt, res, iou_type)
    table = coco_matches(truth, pred, iou_type=iou_type)
    assert_same(ev, table.result)
    image_row = {im["id"]: i for i, im in enumerate(gt["images"])}
    p_img = np.array([image_row[r["image_id"]] for r in res])
    p_row = np.empty(len(res), np.int64)
    p_row[np.argsort(p_img, kind="stable")] = np.arange(len(res))  # results are sorted by image, stably
    t_img = np.array([image_row[a["image_id"]] for a in gt["annotations"]])
    t_row = np.empty(len(t_img), np.int64)
    t_row[np.argsort(t_img, kind="stable")] = np.arange(len(t_img))
    row_of_gt = {a["id"]: int(t_row[i]) for i, a in enumerate(gt["annotations"])}
    all_range = ev.params.areaRng[0]
    seen = np.zeros(len(res), bool)
    n_t = len(ev.params.iouThrs)
    for e in ev.evalImgs:
        if e is None or e["aRng"] != all_range:
            continue
        ious = ev.ious[e["image_id"], e["category_id"]]
        gt_ids = [g["id"] for g in ev._gts[e["image_id"], e["category_id"]]]
        for j, did in enumerate(e["dtIds"]):
            r = p_row[did - 1]
            seen[r] = True
            for t in range(n_t):
                gid, ignored = e["dtMatches"][t, j], e["dtIgnore"][t, j]
                want = MatchTable.IGNORED if ignored else MatchTable.TP if gid else MatchTable.FP
                assert table.pred_status[r, t] == want
                if gid:
                    assert table.pred_match[r, t] == row_of_gt[gid]
                    assert table.pred_iou[r, t] == ious[j, gt_ids.index(gid)]  # bit-equal IoU
        for j, gid in enumerate(e["gtIds"]):
            r = row_of_gt[gid]
            for t in range(n_t):
                did = int(e["gtMatches"][t, j])
                want = MatchTable.IGNORED if e["gtIgnore"][j] else MatchTable.TP if did else MatchTable.FN
                assert table.truth_status[r, t] == want
                assert table.truth_match[r, t] == (p_row[did - 1] if did else -1)
                if did:
                    assert table.truth_iou[r, t] == ious[list(e["dtIds"]).index(did), gt_ids.index(gid)]
    assert (table.pred_status[~seen] == MatchTable.SKIPPED).all()


def test_match_table_marks_predictions_past_max_dets_skipped() -> None:
    gt = gt_dict([(1, 100, 100)], [ann(1, [0.0, 0.0, 10.0, 10.0])])
    dts = [det(1, [0.0, 0.0, 10.0, 10.0], 0.9 - i / 100) for i in range(5)]
    table = coco_matches(*datasets(gt, dts), max_dets=(1, 3))
    assert table.status_names(table.pred_status[:, 0]).tolist() == ["tp", "fp", "fp", "skipped", "skipped"]
    assert table.max_dets == 3 and table.area_range == "all"


def test_perfect_predictions_score_one() -> None:
    truth = shapes(12, seed=3)
    pred = truth.replace(annotations=truth.annotations.with_columns(score=np.linspace(1, 0.5, truth.n_annotations)))
    for iou_type in ("bbox", "segm"):
        r = coco_map(truth, pred, iou_type=iou_type)
        assert r.map_50_95 == pytest.approx(1.0) and r.mar_100 == 1.0


def test_no_predictions_scores_zero_and_no_truth_is_nan() -> None:
    gt = gt_dict([(1, 100, 100), (2, 100, 100)], [ann(1, [0.0, 0.0, 10.0, 10.0])], cats=(1, 2))
    r, _ = check(gt, [])
    assert r.map_50_95 == 0.0 and r.mar_100 == 0.0
    assert np.isnan(r.ap_per_class[1]).all()
    none = gt_dict([(1, 100, 100)], [])
    r2, _ = check(none, [det(1, [0.0, 0.0, 10.0, 10.0], 0.9)])
    assert np.isnan(r2.map_50_95) and (r2.precision == -1).all() and r2.stats[0] == -1


def test_images_order_by_coco_id_not_rows() -> None:
    gt, res = random_case(9, tie_rate=0.9)
    shuffled = dict(gt, images=gt["images"][::-1])
    a = coco_map(*datasets(gt, res))
    b = coco_map(*datasets(shuffled, res))
    np.testing.assert_array_equal(a.precision, b.precision)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_inputs_are_not_changed() -> None:
    gt, res = random_case(11)
    truth, pred = datasets(gt, res)
    before = [truth.annotations.box.copy(), pred.annotations.box.copy(), pred.annotations.score.copy()]
    coco_matches(truth, pred)
    after = [truth.annotations.box, pred.annotations.box, pred.annotations.score]
    for x, y in zip(before, after, strict=True):
        np.testing.assert_array_equal(x, y)


def test_stale_coco_bbox_column_is_not_trusted() -> None:
    gt, res = random_case(12)
    truth, pred = datasets(gt, res)
    moved = pred.annotations.box + 1.0  # boxes edited after reading: the kept COCO boxes no longer apply
    shifted = pred.replace(annotations=pred.annotations.with_columns(box=moved))
    fresh = pred.replace(annotations=pred.annotations.with_columns(
        box=moved, extra={k: v for k, v in pred.annotations.extra.items() if k != "coco_bbox"}))
    np.testing.assert_array_equal(coco_map(truth, shifted).precision, coco_map(truth, fresh).precision)


def test_result_to_dict_and_pandas() -> None:
    gt, res = random_case(1)
    r = coco_map(*datasets(gt, res))
    d = json.loads(json.dumps(r.to_dict()))
    assert d["stats"]["map_50_95"] == r.map_50_95 and len(d["ap_per_class"]) == len(r.class_names)
    assert set(d["stats"]) == set(r.stat_names) and len(r.stat_names) == 12
    df = r.to_pandas()
    assert list(df["class"]) == list(r.class_names) and df.shape[1] == 3 + 2 * len(r.iou_thresholds)  # class, ap+T, ar+T
    with pytest.raises(AttributeError):
        r.map_50 = 1.0  # type: ignore[misc]
    assert not r.precision.flags.writeable
    assert isinstance(r, MapResult)


def test_keypoint_result_fields() -> None:
    r, _ = check(*random_keypoint_case(1), "keypoints")
    assert r.stat_names == ("map_50_95", "map_50", "map_75", "map_medium", "map_large", "mar_20", "mar_50",
                            "mar_75", "mar_medium", "mar_large")
    assert np.isnan(r.mar_100) and np.isnan(r.map_small) and r.max_dets == (20,)


def test_keypoint_predictions_must_have_numeric_coordinates() -> None:
    truth, pred = datasets(*random_keypoint_case(2))
    kp = pred.annotations.keypoints.copy()
    kp[:, :, 2] = np.nan  # the visibility of a prediction is not read: NaN there is fine
    ok = coco_map(truth, pred.replace(annotations=pred.annotations.with_columns(keypoints=kp)), iou_type="keypoints")
    np.testing.assert_array_equal(ok.precision, coco_map(truth, pred, iou_type="keypoints").precision)
    kp[3, 5, 1] = np.nan
    with pytest.raises(InvalidDatasetError, match=r"pred\.annotations\.keypoints row 3: must be numbers"):
        coco_map(truth, pred.replace(annotations=pred.annotations.with_columns(keypoints=kp)), iou_type="keypoints")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"iou_type": "mask"}, "iou_type must be one of", id="iou-type"),
        pytest.param({"iou_thresholds": [0.5, 1.5]}, "iou_thresholds must be", id="iou-range"),
        pytest.param({"recall_thresholds": []}, "recall_thresholds must be", id="recall-empty"),
        pytest.param({"max_dets": (0, 10)}, "max_dets must be positive", id="max-dets"),
        pytest.param({"area_ranges": {}}, "area_ranges must name", id="areas"),
        pytest.param({"pred_area": "mask"}, "pred_area must be", id="pred-area"),
        pytest.param({"iou_type": "keypoints", "use_cats": False}, "use_cats must be True", id="kp-agnostic"),
    ],
)
def test_bad_options_raise(kwargs: dict[str, Any], match: str) -> None:
    truth, pred = datasets(*random_case(0))
    with pytest.raises(ValueError, match=match):
        coco_map(truth, pred, **kwargs)


def test_bad_data_raises() -> None:
    truth, pred = datasets(*random_case(0))
    with pytest.raises(InvalidDatasetError, match="must carry scores"):
        coco_map(truth, truth)
    nan = pred.replace(annotations=pred.annotations.with_columns(score=np.full(pred.n_annotations, np.nan)))
    with pytest.raises(InvalidDatasetError, match="score row 0: must be a number"):
        coco_map(truth, nan)
    two = pred.annotations.score.copy()
    two[[5, 9]] = np.nan
    two_nan = pred.replace(annotations=pred.annotations.with_columns(score=two))
    for native in ("1", "0"):  # the compiled kernel and the numpy path name the same row and count
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MASLOW_NATIVE", native)
            with pytest.raises(InvalidDatasetError, match=r"score row 5: must be a number, got nan \(2 rows\)"):
                coco_map(truth, two_nan)
    with pytest.raises(InvalidDatasetError, match="images table of truth"):
        coco_map(truth, pred.select_images(np.arange(3)))
    kp_truth, kp_pred = datasets(*random_keypoint_case(0))
    with pytest.raises(KeypointSigmasError, match=r"must have 3 keypoints \(one per sigma\), got truth 17, pred 17\."):
        coco_map(kp_truth, kp_pred, iou_type="keypoints", kpt_sigmas=[0.1, 0.2, 0.3])
    nothing = kp_pred.replace(annotations=Annotations.empty().with_columns(score=np.zeros(0)))  # found nothing
    with pytest.raises(KeypointSigmasError, match=r"must have 3 keypoints \(one per sigma\), got truth 17\."):
        coco_map(kp_truth, nothing, iou_type="keypoints", kpt_sigmas=[0.1, 0.2, 0.3])
    assert np.nanmax(coco_map(kp_truth, nothing, iou_type="keypoints").stats) == 0
    with pytest.raises(InvalidDatasetError, match="keypoints"):
        coco_map(truth, pred, iou_type="keypoints")


def test_predictions_of_unknown_classes_are_not_evaluated() -> None:
    gt, res = random_case(5)
    truth, pred = datasets(gt, res)
    from maslow.core.schema import ClassDef, LabelSchema

    renamed = LabelSchema(classes=(*truth.schema.classes[1:], ClassDef(name="other", id=999)))
    moved = pred.replace(schema=renamed, annotations=pred.annotations.with_columns(
        label=np.where(pred.annotations.label == 0, len(renamed.classes) - 1, pred.annotations.label - 1)))
    kept = gt["categories"][0]["id"]
    r, _ = check(gt, [x for x in res if x["category_id"] != kept])
    np.testing.assert_array_equal(coco_map(truth, moved).precision, r.precision)
    table = coco_matches(truth, moved)
    assert (table.pred_status[pred.annotations.label == 0] == MatchTable.SKIPPED).all()


def test_docstring_examples() -> None:
    failures, tried = doctest.testmod(maslow.metrics.coco, optionflags=doctest.ELLIPSIS)
    assert tried >= 2 and failures == 0
