"""``tide_errors``: a hand-checked case with every error type, where TIDE's AP is COCO's (``coco_map``), and the
edge cases (crowd regions, images without truth, classes on one side only, empty predictions, max_dets, bad
input). tidecv and hotcoco themselves: ``test_tide_reference.py``."""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import maslow.metrics.tide
from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema
from maslow.errors import InvalidDatasetError
from maslow.metrics import TideResult, coco_map, plot_tide_errors, tide_errors
from maslow.sample import shapes
from tests.metrics.cocodata import ann, datasets, det, gt_dict, random_case

IMAGES = [(1, 100, 100), (2, 100, 100), (3, 100, 100), (4, 100, 100)]
CAT, DOG = 1, 2


def hand_records() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Image 1: a cat found (P0), found twice (P1: Dupe), a dog called a cat (P2: Cls), a dog boxed a third off
    (P3: Loc, IoU 1/3), a cat on nothing (P4: Bkg), a dog prediction a third over a cat that nobody finds (P5:
    Both; T2: Miss). Image 2: no truth (P6: Bkg). Image 3: a crowd of cats (T4) and a cat inside it (P7: ignored,
    and Bkg, as the image has no other truth). Image 4: a cat found with the lowest score (P8)."""
    gt = gt_dict(IMAGES, [
        ann(1, [0, 0, 10, 10], CAT), ann(1, [50, 50, 10, 10], DOG), ann(1, [20, 60, 10, 10], CAT),
        ann(1, [70, 0, 10, 10], DOG), ann(3, [0, 0, 50, 50], CAT, iscrowd=1), ann(4, [0, 0, 10, 10], CAT),
    ], cats=(CAT, DOG))
    results = [det(1, [0, 0, 10, 10], 0.9, CAT), det(1, [0, 0, 10, 10], 0.8, CAT), det(1, [50, 50, 10, 10], 0.7, CAT),
               det(1, [75, 0, 10, 10], 0.65, DOG), det(1, [40, 20, 10, 10], 0.5, CAT),
               det(1, [25, 60, 10, 10], 0.4, DOG), det(2, [0, 0, 10, 10], 0.6, CAT), det(3, [10, 10, 10, 10], 0.3, CAT),
               det(4, [0, 0, 10, 10], 0.1, CAT)]
    return gt, results


def hand_case() -> tuple[Dataset, Dataset]:
    return datasets(*hand_records())


def test_hand_case_types_and_targets() -> None:
    r = tide_errors(*hand_case())
    assert r.error_names(r.pred_error).tolist() == ["TP", "Dupe", "Cls", "Loc", "Bkg", "Both", "Bkg", "Bkg", "TP"]
    assert r.pred_ignored.tolist() == [False] * 7 + [True, False]
    assert r.pred_truth.tolist() == [0, 0, 1, 3, -1, 2, -1, -1, 5]
    np.testing.assert_allclose(r.pred_iou[[0, 1, 2, 3, 5, 8]], [1, 1, 1, 1 / 3, 1 / 3, 1])
    assert r.error_names(r.truth_error).tolist() == ["TP", "covered", "Miss", "covered", "ignored", "TP"]
    assert r.truth_pred.tolist() == [0, -1, -1, -1, -1, 8]
    assert dict(r.counts) == {"Cls": 1, "Loc": 1, "Both": 1, "Dupe": 1, "Bkg": 3, "Miss": 1}
    # under the prediction's class (the Cls error is a cat prediction), Miss under the truth's
    assert r.counts_per_class.tolist() == [[1, 0, 0, 1, 3, 1], [0, 1, 1, 0, 0, 0]]
    assert r.n_truth_per_class.tolist() == [3, 2] and r.n_pred_per_class.tolist() == [7, 2]


def test_hand_case_delta_ap() -> None:
    """The cat class (3 truth objects) lists TP .9, FP .8 .7 .6 .5, TP .1: precision 1 up to recall 1/3 (34 of
    tidecv's 101 recall points), then the smoothed 1/3 up to recall 2/3 (33 points): AP 45/101; the dog class has
    no true positive: AP 0. Each fix re-reads these lists (worked out in the comments)."""
    r = tide_errors(*hand_case())
    assert r.ap_base == pytest.approx(45 / 202, abs=1e-12)
    assert r.ap_per_class == pytest.approx([45 / 101, 0.0], abs=1e-12)
    expected = {
        "Cls": 53.2 / 202,  # P2 becomes a dog TP (AP 51/101); cat loses an FP: 1 then 2/5 (34 + 33 * .4)
        "Loc": 51 / 202,  # P3 becomes the dog TP
        "Both": 0.0,  # dropping P5 leaves the dog class without TP
        "Dupe": 2.2 / 202,  # the cat list without P1: as in Cls
        "Bkg": 5.5 / 202,  # without P4, P6: 1 then 2/4 (34 + 33 * .5)
        "Miss": (6 + 50 / 3) / 202,  # T2 dropped: cat recall 1/2 then 1 (51 + 50 * 1/3)
        "FP": 22 / 202,  # both cat TPs first: precision 1 up to recall 2/3 (67 points)
        "FN": (6 + 50 / 3) / 202,  # every unmatched cat (T2) and dog (T1, T3) dropped
    }
    for name, v in expected.items():
        assert r.delta_ap[name] == pytest.approx(v, abs=1e-12), name
    cls = r.DELTA_TYPES.index("Cls")
    assert r.delta_ap_per_class[:, cls] == pytest.approx([2.2 / 101, 51 / 101], abs=1e-12)


def test_fix_goes_to_the_first_error_on_a_truth_object() -> None:
    """Two Loc errors on one dog: the higher-scored one becomes the TP, the other is dropped (tidecv's
    BestGTMatch), so fixing Loc gives recall 1/1 at precision 1 rather than two TPs for one object."""
    gt = gt_dict([(1, 100, 100)], [ann(1, [0, 0, 10, 10], DOG)], cats=(DOG,))
    truth, pred = datasets(gt, [det(1, [5, 0, 10, 10], 0.9, DOG), det(1, [0, 5, 10, 10], 0.8, DOG)])
    r = tide_errors(truth, pred)
    assert r.error_names(r.pred_error).tolist() == ["Loc", "Loc"]
    assert r.ap_base == 0.0 and r.delta_ap["Loc"] == pytest.approx(1.0)
    assert r.error_names(r.truth_error).tolist() == ["covered"] and r.counts["Miss"] == 0


def test_priority_loc_before_cls_before_dupe() -> None:
    """A cat prediction a quarter over a cat and half over a dog is Loc (tested first); a second cat prediction on a
    found cat that a dog shares is Cls (tested before Dupe)."""
    gt = gt_dict([(1, 100, 100)], [ann(1, [0, 0, 10, 10], CAT), ann(1, [0, 0, 10, 10], DOG),
                                   ann(1, [50, 50, 10, 10], CAT), ann(1, [53, 50, 10, 10], DOG)], cats=(CAT, DOG))
    truth, pred = datasets(gt, [det(1, [0, 0, 10, 10], 0.9, CAT), det(1, [0, 0, 10, 10], 0.8, CAT),
                                det(1, [56, 50, 10, 10], 0.7, CAT)])
    r = tide_errors(truth, pred)
    assert r.error_names(r.pred_error).tolist() == ["TP", "Cls", "Loc"]
    assert r.pred_truth.tolist() == [0, 1, 2] and r.pred_iou[2] == pytest.approx(0.25)


def test_iou_tie_goes_to_the_first_truth_object() -> None:
    """tidecv's argmax takes the first of equal IoUs (pycocotools the last)."""
    gt = gt_dict([(1, 100, 100)], [ann(1, [0, 0, 10, 10], CAT), ann(1, [10, 0, 10, 10], CAT)], cats=(CAT,))
    truth, pred = datasets(gt, [det(1, [5, 0, 10, 10], 0.9, CAT)])
    r = tide_errors(truth, pred, pos_thr=0.3)
    assert r.pred_truth.tolist() == [0] and r.error_names(r.truth_error).tolist() == ["TP", "Miss"]


def test_score_ties_errors_first_in_fixed_runs() -> None:
    """A true positive (image 1) and a false positive (image 2) with one score: the unfixed run lists them in image
    order (AP 1), every fixed run lists errors first (AP 1/2). So fixing Dupe, which changes nothing, would cost
    1/2: tidecv clamps the main types at 0, not the FN oracle, and the per-class gains are not clamped."""
    gt = gt_dict([(1, 100, 100), (2, 100, 100)], [ann(1, [0, 0, 10, 10], CAT)], cats=(CAT,))
    truth, pred = datasets(gt, [det(1, [0, 0, 10, 10], 0.5, CAT), det(2, [0, 0, 10, 10], 0.5, CAT)])
    r = tide_errors(truth, pred)
    assert r.ap_base == 1.0 and r.delta_ap["Dupe"] == 0.0 and r.delta_ap["FP"] == 0.0
    assert r.delta_ap["FN"] == -0.5  # every recall point at precision 1/2
    assert r.delta_ap_per_class[0, r.DELTA_TYPES.index("Dupe")] == -0.5


def _overlap(a: list[float], b: list[float]) -> bool:
    return min(a[0] + a[2], b[0] + b[2]) > max(a[0], b[0]) and min(a[1] + a[3], b[1] + b[3]) > max(a[1], b[1])


def comparable_case(seed: int, *, separate: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A generated case on which tidecv's definitions give COCO's numbers: no crowd, unique scores, no COCO
    annotation id 0 (pycocotools drops its matches), no class predicted without truth, and truth counts prime to
    10 (recall n / n_truth never lands on a threshold, where COCO's linspace grid, 0.15000000000000002, and
    tidecv's r / 100 part). ``separate``: no truth object overlaps another (no competition for a prediction)."""
    gt, results = random_case(seed, n_images=15, max_dt=12, crowd_rate=0.0, tie_rate=0.0, decimals=2)
    rng = np.random.default_rng(seed)
    for i, r in enumerate(results):
        r["score"] = float(rng.random()) + i * 1e-9
    row_of = {im["id"]: i for i, im in enumerate(gt["images"])}
    anns = sorted(gt["annotations"], key=lambda a: row_of[a["image_id"]])
    if separate:
        anns = [a for a in anns if not any(b is not a and b["image_id"] == a["image_id"] and _overlap(a["bbox"], b["bbox"])
                                           for b in anns)]
    for c in {a["category_id"] for a in anns}:
        while (n := sum(a["category_id"] == c for a in anns)) % 2 == 0 or n % 5 == 0:
            anns.remove(next(a for a in reversed(anns) if a["category_id"] == c))
    for i, a in enumerate(anns):
        a["id"] = i + 1
    present = {a["category_id"] for a in anns}
    results = sorted((r for r in results if r["category_id"] in present), key=lambda r: row_of[r["image_id"]])
    return {**gt, "annotations": anns}, results


@pytest.mark.parametrize("seed", range(5))
def test_ap_base_is_coco_ap50_where_the_definitions_agree(seed: int) -> None:
    truth, pred = datasets(*comparable_case(seed))
    m = coco_map(truth, pred)
    r = tide_errors(truth, pred)
    assert r.ap_base == pytest.approx(m.map_50, abs=1e-12)
    assert r.ap_per_class == pytest.approx(m.ap_per_class[:, 0], abs=1e-12)


@pytest.mark.parametrize(("x", "ignored"), [pytest.param(5, False, id="iof-0.5"), pytest.param(4, True, id="iof-0.6")])
def test_crowd_region_ignores_above_pos_thr_only(x: int, ignored: bool) -> None:
    """tidecv ignores an unmatched prediction whose intersection over its own area with a crowd region of its
    class is strictly above pos_thr (COCO: at or above); ignored or not, it is classified (here Bkg)."""
    gt = gt_dict([(1, 100, 100)], [ann(1, [0, 0, 10, 10], CAT, iscrowd=1)], cats=(CAT,))
    truth, pred = datasets(gt, [det(1, [x, 0, 10, 10], 0.9, CAT)])
    r = tide_errors(truth, pred)
    assert r.pred_ignored.tolist() == [ignored]
    assert r.counts["Bkg"] == 1 and r.n_truth_per_class.tolist() == [0]
    # ignored: no point and no truth left, so the class is out of the mean (nan); else an FP without truth: AP 0
    assert (np.isnan(r.ap_base) if ignored else r.ap_base == 0.0)


def test_max_dets_cuts_each_image_over_all_classes() -> None:
    gt = gt_dict([(1, 100, 100)], [ann(1, [0, 0, 10, 10], CAT), ann(1, [50, 50, 10, 10], DOG)], cats=(CAT, DOG))
    truth, pred = datasets(gt, [det(1, [0, 0, 10, 10], 0.9, CAT), det(1, [50, 50, 10, 10], 0.5, DOG),
                                det(1, [30, 30, 10, 10], 0.7, DOG)])
    r = tide_errors(truth, pred, max_dets=2)
    assert r.error_names(r.pred_error).tolist() == ["TP", "skipped", "Bkg"]
    assert r.error_names(r.truth_error).tolist() == ["TP", "Miss"]
    assert tide_errors(truth, pred).error_names(tide_errors(truth, pred).pred_error).tolist() == ["TP", "TP", "Bkg"]


def test_empty_predictions_miss_everything() -> None:
    truth, pred = hand_case()
    r = tide_errors(truth, pred.select(np.zeros(pred.n_annotations, bool)))
    assert r.ap_base == 0.0 and r.counts["Miss"] == 5 and sum(r.counts.values()) == 5
    assert r.delta_ap["FP"] == 0.0
    # fixing every miss leaves no truth object and no prediction in any class: nothing to average (tidecv raises)
    assert np.isnan(r.delta_ap["Miss"]) and np.isnan(r.delta_ap["FN"])
    json.dumps(r.to_dict(), allow_nan=False)


def test_no_truth_makes_every_prediction_background() -> None:
    truth, pred = hand_case()
    r = tide_errors(truth.select(np.zeros(truth.n_annotations, bool)), pred)
    assert set(r.error_names(r.pred_error).tolist()) == {"Bkg"}
    assert r.ap_base == 0.0  # classes with predictions and no truth count as AP 0 in tidecv's mean
    assert np.isnan(r.delta_ap["Bkg"])  # and without the predictions no class is left


def test_classes_on_one_side() -> None:
    """A schema class with neither truth nor predictions is out of the mean (nan); one with predictions only
    counts as AP 0; a predicted class the truth's schema lacks is appended and evaluated the same way."""
    gt = gt_dict([(1, 100, 100)], [ann(1, [0, 0, 10, 10], CAT)], cats=(CAT, DOG, 3))
    truth, pred = datasets(gt, [det(1, [0, 0, 10, 10], 0.9, CAT), det(1, [60, 60, 10, 10], 0.8, DOG)])
    r = tide_errors(truth, pred)
    assert r.class_names == ("c1", "c2", "c3")
    assert r.ap_per_class[:2].tolist() == [1.0, 0.0] and np.isnan(r.ap_per_class[2])
    assert r.ap_base == pytest.approx(0.5)
    schema = LabelSchema(classes=(ClassDef(name="c1", id=1), ClassDef(name="zebra", id=9)))
    other = pred.replace(schema=schema, annotations=pred.annotations.with_columns(label=np.array([0, 1])))
    r2 = tide_errors(truth, other)
    assert r2.class_names == ("c1", "c2", "c3", "zebra")
    assert r2.error_names(r2.pred_error).tolist() == ["TP", "Bkg"] and r2.counts_per_class[3, 4] == 1
    assert r2.ap_base == pytest.approx(0.5)


def test_segm_perfect_predictions() -> None:
    truth = shapes(12, seed=3)
    a = truth.annotations
    pred = truth.replace(annotations=a.with_columns(score=np.linspace(1, 0.5, len(a)))).select(~a.iscrowd)
    for iou_type in ("segm", "bbox"):
        r = tide_errors(truth, pred, iou_type=iou_type)
        assert r.ap_base == 1.0 and sum(r.counts.values()) == 0
        assert set(r.error_names(r.truth_error).tolist()) <= {"TP", "ignored"}


def test_result_outputs() -> None:
    truth, pred = hand_case()
    r = tide_errors(truth, pred)
    d = r.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["delta_ap"].keys() == set(TideResult.DELTA_TYPES) and d["counts"]["Bkg"] == 3
    assert d["per_class"][1]["class"] == "c2" and d["per_class"][1]["counts"]["Loc"] == 1
    df = r.to_pandas()
    assert list(df.columns[:4]) == ["class", "n_truth", "n_pred", "ap"] and "dap_FN" in df and "n_Miss" in df
    assert df["n_Bkg"].tolist() == [3, 0]
    for arr in (r.pred_error, r.truth_error, r.ap_per_class, r.delta_ap_per_class):
        assert not arr.flags.writeable
    with pytest.raises(TypeError):
        r.delta_ap["Cls"] = 1.0  # type: ignore[index]
    # the Loc errors of class dog, as a user would look them up
    loc_dog = (r.pred_error == r.LOC) & (pred.annotations.label == r.class_names.index("c2"))
    assert np.flatnonzero(loc_dog).tolist() == [3]


def test_input_not_mutated_and_errors() -> None:
    truth, pred = hand_case()
    before = pred.annotations.box.copy()
    tide_errors(truth, pred)
    np.testing.assert_array_equal(pred.annotations.box, before)
    with pytest.raises(ValueError, match="iou_type"):
        tide_errors(truth, pred, iou_type="keypoints")
    with pytest.raises(ValueError, match="bg_thr"):
        tide_errors(truth, pred, bg_thr=0.6)
    with pytest.raises(ValueError, match="pos_thr"):
        tide_errors(truth, pred, pos_thr=0)
    with pytest.raises(ValueError, match="max_dets"):
        tide_errors(truth, pred, max_dets=0)
    with pytest.raises(InvalidDatasetError, match="score"):
        tide_errors(truth, truth)
    nan = pred.replace(annotations=pred.annotations.with_columns(score=np.r_[np.nan, pred.annotations.score[1:]]))
    with pytest.raises(InvalidDatasetError, match="score row 0"):
        tide_errors(truth, nan)
    with pytest.raises(InvalidDatasetError, match="images"):
        tide_errors(truth, shapes(2, seed=0).replace(annotations=pred.annotations.take(np.zeros(0, np.int64))))


def test_doctests() -> None:
    failures, tried = doctest.testmod(maslow.metrics.tide)
    assert tried and not failures


@pytest.mark.parametrize("empty", [False, True], ids=["hand-case", "no-predictions"])
def test_plot_writes_a_png(tmp_path: Path, empty: bool) -> None:
    from PIL import Image

    truth, pred = hand_case()
    if empty:  # undefined dAP (nan): written n/a, no bar
        pred = pred.select(np.zeros(pred.n_annotations, bool))
    path = plot_tide_errors(tide_errors(truth, pred), tmp_path / "tide.png")
    assert path == tmp_path / "tide.png" and [p.name for p in tmp_path.iterdir()] == ["tide.png"]
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 300
