"""One test per entry of ../shared/reference/coco-eval-pitfalls.md: maslow agrees with pycocotools 2.0.11 cell for
cell (``check`` asserts every precision/recall/scores cell and every stat equal), and each test also shows
that the quirk changes the numbers, so the agreement is not an accident."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from maslow.errors import InvalidDatasetError
from maslow.metrics import MatchTable, coco_map, coco_matches
from tests.metrics.cocodata import (
    ann,
    check,
    datasets,
    det,
    gt_dict,
    pycoco,
    random_case,
    random_keypoint_case,
    random_segm_case,
)

BOX = [10.0, 10.0, 20.0, 20.0]


def test_pitfall_01_score_ties_follow_input_order() -> None:
    # two detections with the same score on one object: the first in file order is the TP
    gt = gt_dict([(1, 100, 100), (2, 100, 100)], [ann(1, BOX), ann(2, BOX)])
    hit, miss = [10.0, 10.0, 20.0, 20.0], [60.0, 60.0, 10.0, 10.0]
    a, _ = check(gt, [det(1, hit, 0.5), det(1, miss, 0.5), det(2, miss, 0.5), det(2, hit, 0.5)])
    b, _ = check(gt, [det(1, miss, 0.5), det(1, hit, 0.5), det(2, hit, 0.5), det(2, miss, 0.5)])
    assert not np.array_equal(a.precision, b.precision)
    # across images, ties go by image id, not by row: image 2 listed first
    gt2 = gt_dict([(2, 100, 100), (1, 100, 100)], [ann(2, BOX), ann(1, BOX)])
    c, _ = check(gt2, [det(2, miss, 0.5), det(1, hit, 0.5)])
    d, _ = check(gt2, [det(2, hit, 0.5), det(1, miss, 0.5)])
    assert c.map_50 != d.map_50


def test_pitfall_02_max_dets_is_per_image_per_category() -> None:
    gt = gt_dict([(1, 100, 100)], [ann(1, BOX, cat=1), ann(1, BOX, cat=2), ann(1, BOX, cat=3)], cats=(1, 2, 3))
    dts = [det(1, BOX, 0.9, cat=c) for c in (1, 2, 3)]
    r, _ = check(gt, dts, max_dets=(1, 10, 100))
    assert r.mar_1 == 1.0  # three detections in one image, all counted at maxDets=1


def test_pitfall_03_ap_reads_max_dets_100() -> None:
    gt = gt_dict([(1, 100, 100)], [ann(1, BOX)])
    r, ev = check(gt, [det(1, BOX, 0.9)], max_dets=(1, 10, 50))
    assert ev.stats[0] == -1 and np.isnan(r.map_50_95) and r.stats[0] == -1
    assert r.map_50 == pytest.approx(1.0)  # the other AP stats read max_dets[2] = 50
    short = coco_map(*datasets(gt, [det(1, BOX, 0.9)]), max_dets=(1, 10))
    assert np.isnan(short.map_50) and np.isnan(short.mar_100) and short.mar_10 == 1.0  # pycocotools raises


def test_pitfall_04_area_ranges_are_closed() -> None:
    gt = gt_dict([(1, 100, 100)], [ann(1, [0.0, 0.0, 32.0, 32.0], area=1024.0)])
    r, _ = check(gt, [det(1, [0.0, 0.0, 32.0, 32.0], 0.9)])
    assert r.map_small == pytest.approx(1.0) and r.map_medium == pytest.approx(1.0)  # area 1024 is small and medium


def test_pitfall_05_truth_area_is_the_area_field() -> None:
    # the box is large (100 x 100) but the area field (the mask) is small
    gt = gt_dict([(1, 200, 200)], [ann(1, [0.0, 0.0, 100.0, 100.0], area=500.0)])
    dts = [det(1, [0.0, 0.0, 100.0, 100.0], 0.9)]
    r, _ = check(gt, dts)
    assert r.map_small == pytest.approx(1.0) and np.isnan(r.map_large)
    truth, pred = datasets(gt, dts)
    no_field = truth.replace(annotations=truth.annotations.with_columns(
        extra={k: v for k, v in truth.annotations.extra.items() if k != "area"}))
    fallback = coco_map(no_field, pred)
    assert np.isnan(fallback.map_small) and fallback.map_large == pytest.approx(1.0)  # box area without the field


def test_pitfall_06_prediction_area_follows_the_evaluated_geometry() -> None:
    h = w = 100
    small = [[0.0, 0.0, 20.0, 0.0, 20.0, 20.0, 0.0, 20.0]]
    sliver = [[40.0, 40.0, 99.0, 40.0, 99.0, 43.0, 40.0, 43.0]]  # mask area ~180, box area ~180
    diagonal = [[40.0, 40.0, 44.0, 40.0, 99.0, 95.0, 95.0, 99.0]]  # thin diagonal: small mask, large box
    gt_rle = mask_utils.merge(mask_utils.frPyObjects(small, h, w))
    gt = gt_dict([(1, w, h)], [{"image_id": 1, "category_id": 1, "segmentation": small, "bbox": [0, 0, 20, 20],
                                "area": float(mask_utils.area(gt_rle))}])

    def result(poly: list[list[float]], score: float, with_box: bool) -> dict[str, object]:
        rle = mask_utils.merge(mask_utils.frPyObjects(poly, h, w))
        out: dict[str, object] = {"image_id": 1, "category_id": 1, "score": score,
                                  "segmentation": {"size": [h, w], "counts": rle["counts"].decode()}}
        if with_box:
            out["bbox"] = [float(v) for v in mask_utils.toBbox(rle)]
        return out

    del sliver
    only_segm = [result(small, 0.8, False), result(diagonal, 0.9, False)]
    with_box = [result(small, 0.8, True), result(diagonal, 0.9, True)]
    _a, ev_a = check(gt, only_segm, "segm")  # default: mask area, as loadRes for segm-only results
    _b, ev_b = check(gt, with_box, "segm", pred_area="box")  # loadRes types the file by its first entry: bbox
    assert ev_a.stats[3] < ev_b.stats[3] == pytest.approx(1.0)  # the FP counts as small only by its mask


def test_pitfall_07_crowd_regions() -> None:
    crowd = {"image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 80.0, 80.0], "iscrowd": 1}
    gt = gt_dict([(1, 100, 100)], [crowd, ann(1, [85.0, 85.0, 10.0, 10.0])])
    dts = [det(1, [5.0, 5.0, 20.0, 20.0], 0.9), det(1, [30.0, 30.0, 20.0, 20.0], 0.8),
           det(1, [85.0, 85.0, 10.0, 10.0], 0.7)]
    r, _ev = check(gt, dts)
    assert r.map_50 == pytest.approx(1.0)  # the two detections on the crowd are neither TP nor FP
    truth, pred = datasets(gt, dts)
    table = coco_matches(truth, pred)
    crowd_row = int(np.flatnonzero(truth.annotations.iscrowd)[0])
    assert (table.pred_status[:2, 0] == MatchTable.IGNORED).all()
    assert table.pred_iou[0, 0] == 1.0  # intersection over the detection's area
    assert table.truth_match[crowd_row, 0] == 1  # a crowd region keeps its last match
    assert table.truth_status[crowd_row, 0] == MatchTable.IGNORED


def test_pitfall_08_matched_predictions_outside_the_range_count() -> None:
    gt = gt_dict([(1, 200, 200)], [ann(1, [0.0, 0.0, 31.5, 31.5])])  # area 992.25: small
    dts = [det(1, [0.0, 0.0, 32.1, 32.1], 0.9),  # matched (IoU 0.96), area 1030.41: outside "small", still a TP
           det(1, [100.0, 100.0, 90.0, 90.0], 0.95)]  # unmatched and large: ignored for "small"
    r, _ = check(gt, dts)
    assert r.map_small == pytest.approx(1.0) and r.map_50 < 0.9


def test_pitfall_09_matching_thresholds() -> None:
    gt = gt_dict([(1, 100, 100)], [ann(1, [0.0, 0.0, 10.0, 10.0])])
    r, _ = check(gt, [det(1, [0.0, 0.0, 10.0, 5.0], 0.9)])  # IoU exactly 0.5 matches (>=)
    assert r.map_50 == pytest.approx(1.0) and r.map_75 == 0.0
    r1, _ = check(gt, [det(1, [0.0, 0.0, 10.0, 10.0], 0.9)], iou_thresholds=[1.0])  # min(1, 1 - 1e-10)
    assert r1.ap_per_class[0, 0] == pytest.approx(1.0)
    # a regular object is preferred over a crowd region with a higher IoU, and the scan stops there
    crowd = {"image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 10.0, 10.0], "iscrowd": 1}
    gt2 = gt_dict([(1, 100, 100)], [crowd, ann(1, [0.0, 0.0, 10.0, 6.0])])
    r2, _ = check(gt2, [det(1, [0.0, 0.0, 10.0, 10.0], 0.9)])
    assert r2.map_50 == pytest.approx(1.0)


def test_pitfall_10_interpolation() -> None:
    gt = gt_dict([(1, 100, 100)], [ann(1, [0.0, 0.0, 10.0, 10.0]), ann(1, [50.0, 50.0, 10.0, 10.0])])
    dts = [det(1, [80.0, 0.0, 10.0, 10.0], 0.9), det(1, [0.0, 0.0, 10.0, 10.0], 0.8)]  # FP then TP
    r, _ = check(gt, dts)
    p = r.precision[0, :, 0, 0, -1]
    assert p[50] == pytest.approx(0.5) and (p[51:] == 0).all()  # recall 0.5 is the most reached
    assert r.recall[0, 0, 0, -1] == 0.5  # AR is the final recall
    assert r.scores[0, 0, 0, 0, -1] == 0.9  # recall 0 reads the first prediction, an FP


def test_pitfall_11_minus_one_sentinel() -> None:
    gt = gt_dict([(1, 100, 100)], [ann(1, BOX, cat=1), ann(1, [50.0, 50.0, 10.0, 10.0], cat=2)], cats=(1, 2, 3))
    r, _ = check(gt, [det(1, BOX, 0.9, cat=1), det(1, BOX, 0.9, cat=3)])
    assert (r.precision[:, :, 2] == -1).all() and np.isnan(r.ap_per_class[2]).all()  # class 3: no truth
    assert (r.ap_per_class[1] == 0).all()  # class 2: truth but no detection counts as 0
    assert r.map_50 == pytest.approx(0.5)


def test_pitfall_12_threshold_grids_are_float64_linspace() -> None:
    gt = gt_dict([(1, 100, 100)], [ann(1, BOX)])
    r, _ = check(gt, [det(1, [10.0, 10.0, 20.0, 18.0], 0.9)])
    np.testing.assert_array_equal(r.iou_thresholds, np.linspace(0.5, 0.95, 10))
    assert r.iou_thresholds[8] == 0.8999999999999999
    assert not np.array_equal(np.linspace(0.5, 0.95, 10, dtype=np.float32).astype(np.float64), r.iou_thresholds)
    custom, _ = check(gt, [det(1, BOX, 0.9)], iou_thresholds=[0.5, 0.75])
    assert custom.map_50 == custom.map_75 == pytest.approx(1.0)
    no_75, _ = check(gt, [det(1, BOX, 0.9)], iou_thresholds=[0.5, 0.9])
    assert np.isnan(no_75.map_75)


def test_pitfall_13_images_without_truth_masks_still_count() -> None:
    h = w = 64
    poly = [[5.0, 5.0, 30.0, 5.0, 30.0, 30.0]]
    rle = mask_utils.merge(mask_utils.frPyObjects(poly, h, w))
    gt = gt_dict([(1, w, h), (2, w, h)], [{"image_id": 1, "category_id": 1, "segmentation": poly,
                                           "bbox": [5.0, 5.0, 25.0, 25.0], "area": float(mask_utils.area(rle))}])
    seg = {"size": [h, w], "counts": rle["counts"].decode()}
    hit = {"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": seg}
    on_empty = {"image_id": 2, "category_id": 1, "score": 0.9, "segmentation": seg}  # image 2 has no truth
    with_fp, _ = check(gt, [hit, on_empty], "segm")
    without, _ = check(gt, [hit], "segm")
    assert with_fp.map_50 < without.map_50 == pytest.approx(1.0)  # the detection on the empty image is an FP


def test_pitfall_14_ignore_flag_is_overwritten_by_iscrowd() -> None:
    gt = gt_dict([(1, 100, 100)], [ann(1, BOX, ignore=1), ann(1, [60.0, 60.0, 20.0, 20.0])])
    dts = [det(1, BOX, 0.9)]
    r, _ = check(gt, dts)
    assert r.mar_100 == 0.5  # the object flagged ignore=1 still counts
    truth, pred = datasets(gt, dts)
    flagged = truth.replace(annotations=truth.annotations.with_columns(
        extra={**truth.annotations.extra, "ignore": np.array([1, 0])}))
    assert coco_map(flagged, pred).mar_100 == 0.5  # an "ignore" column is not used either


def test_pitfall_15_keypoints() -> None:
    kp = [10.0, 10.0, 2, 20.0, 20.0, 2, 0.0, 0.0, 0]
    gt = gt_dict([(1, 100, 100)], [
        {"image_id": 1, "category_id": 1, "keypoints": kp, "num_keypoints": 2, "bbox": [5.0, 5.0, 20.0, 20.0],
         "area": 300.0},
        {"image_id": 1, "category_id": 1, "keypoints": [0.0] * 9, "num_keypoints": 0,  # ignored; box surrogate
         "bbox": [50.0, 50.0, 20.0, 20.0], "area": 300.0},
    ])
    dts = [{"image_id": 1, "category_id": 1, "score": 0.9, "keypoints": [11.0, 10.0, 1, 20.0, 22.0, 1, 3.0, 3.0, 1]},
           {"image_id": 1, "category_id": 1, "score": 0.8, "keypoints": [55.0, 55.0, 1, 60.0, 60.0, 1, 90.0, 90.0, 1]}]
    sigmas = [0.5, 0.6, 0.7]
    _r, ev = check(gt, dts, "keypoints", kpt_sigmas=sigmas)
    truth, pred = datasets(gt, dts)
    table = coco_matches(truth, pred, iou_type="keypoints", kpt_sigmas=sigmas)
    assert table.pred_iou[0, 0] == ev.ious[1, 1][0, 0]  # OKS bit-equal
    assert table.pred_status[1, 0] == MatchTable.IGNORED  # matched to the person without keypoints
    for seed in range(4):
        check(*random_keypoint_case(seed), "keypoints")


def test_pitfall_16_masks_are_rasterised_by_this_pycocotools() -> None:
    gt, res = random_segm_case(5)
    _r, ev = check(gt, res, "segm")
    truth, pred = datasets(gt, res)
    table = coco_matches(truth, pred, iou_type="segm")
    hit = ~np.isnan(table.pred_iou[:, 0])
    assert hit.any()
    all_ious = np.concatenate([np.ravel(v) for v in ev.ious.values() if len(v)])
    assert np.isin(table.pred_iou[hit, 0], all_ious).all()


def test_pitfall_17_polygon_quirks() -> None:
    h = w = 40
    anns = [
        {"image_id": 1, "category_id": 1, "segmentation": [[2.0, 2.0, 12.0, 2.0, 12.0, 12.0, 2.0, 12.0],
                                                           [20.0, 20.0, 30.0, 20.0, 25.0, 28.0]]},  # multi-part
        {"image_id": 1, "category_id": 1, "segmentation": [[-5.0, 30.0, 10.0, 30.0, 10.0, 45.0]]},  # clipped
        {"image_id": 1, "category_id": 1, "segmentation": [[30.0, 2.0, 38.0, 2.0, 34.0, 9.0], [1.0, 1.0]]},
    ]
    for a in anns:
        rle = mask_utils.merge(mask_utils.frPyObjects(a["segmentation"], h, w))
        a["area"] = float(mask_utils.area(rle))
        a["bbox"] = [float(v) for v in mask_utils.toBbox(rle)]
    gt = gt_dict([(1, w, h)], anns)
    res = []
    for i, a in enumerate(anns):
        rle = mask_utils.merge(mask_utils.frPyObjects(a["segmentation"][:1], h, w))  # first part only
        res.append({"image_id": 1, "category_id": 1, "score": 0.9 - i / 10,
                    "segmentation": {"size": [h, w], "counts": rle["counts"].decode()}})
    r, _ = check(gt, res, "segm")
    assert 0 < r.map_50_95 < 1  # the multi-part object is only partly covered
    # a first polygon of 4 numbers (2 points): pycocotools 2.0.11 reads it as a box and fails; maslow says so
    two = gt_dict([(1, w, h)], [{"image_id": 1, "category_id": 1, "segmentation": [[1.0, 1.0, 9.0, 9.0]],
                                 "bbox": [1.0, 1.0, 8.0, 8.0], "area": 64.0}])
    with pytest.raises(TypeError):
        pycoco(two, res[:1], "segm")
    with pytest.raises(InvalidDatasetError, match="polygon row 0: the first polygon must have 3 or more points"):
        coco_map(*datasets(two, res[:1]), iou_type="segm")


def test_pitfall_18_results_are_not_rewritten() -> None:
    gt, res = random_case(2)
    truth, pred = datasets(gt, res)
    crowded = pred.replace(annotations=pred.annotations.with_columns(iscrowd=np.ones(pred.n_annotations, bool)))
    np.testing.assert_array_equal(coco_map(truth, crowded).precision, coco_map(truth, pred).precision)
    # segm on box-only predictions: pycocotools silently evaluates rectangles; maslow refuses
    sgt, sres = random_segm_case(2)
    struth, _ = datasets(sgt, sres)
    boxes_only = [{"image_id": r["image_id"], "category_id": r["category_id"], "bbox": [1.0, 1.0, 5.0, 5.0],
                   "score": r["score"]} for r in sres]
    _, spred = datasets(sgt, boxes_only)
    with pytest.raises(InvalidDatasetError, match="needs a polygon or a mask"):
        coco_map(struth, spred, iou_type="segm")
    # predictions must be on truth's images (loadRes asserts a subset of its image ids)
    other = pred.replace(images=pred.images.take(np.arange(pred.n_images)[::-1]))
    with pytest.raises(InvalidDatasetError, match="images"):
        coco_map(truth, other)


def test_pitfall_19_every_precision_cell_is_bit_exact() -> None:
    for seed in (0, 1, 2):
        gt, res = random_case(seed, tie_rate=0.9, n_images=20, max_dt=30)
        r, ev = check(gt, res)
        assert (r.precision == ev.eval["precision"]).all()  # not within 1 ULP: equal


def test_pitfall_20_areas_stay_float64() -> None:
    area = 1024.00001  # float32 rounds it to 1024.0, which would make it "small" too
    assert float(np.float32(area)) == 1024.0
    gt = gt_dict([(1, 100, 100)], [ann(1, [0.0, 0.0, 32.0, 32.0], area=area)])
    r, _ = check(gt, [det(1, [0.0, 0.0, 32.0, 32.0], 0.9)])
    assert np.isnan(r.map_small) and r.map_medium == pytest.approx(1.0)


def test_pitfall_21_means_sum_pairwise() -> None:
    gt, res = random_case(7, n_cats=40, n_images=40, max_gt=10, max_dt=20)
    r, ev = check(gt, res)
    s = r.precision[:, :, :, 0, -1]
    values = s[s > -1]
    naive = 0.0
    for v in values.tolist():
        naive += v
    assert r.stats[0] == np.mean(values) == ev.stats[0]
    assert naive / len(values) != r.stats[0]  # a left-to-right sum would be off in the last bits
