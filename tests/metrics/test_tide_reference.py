"""``tide_errors`` against tidecv 1.0.1 itself (every dAP, count and per-prediction error type, on generated cases
with crowds, score and IoU ties, empty images and images past ``max_dets``) and against hotcoco 1.3's
``COCOeval.tide_errors`` where the two definitions agree. Each runs only where its package is importable
(neither is a maslow dependency: ``pip install tidecv`` needs opencv, hotcoco is in the ``bench`` extra)."""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from maslow.metrics import TideResult, tide_errors
from tests.metrics.cocodata import ann, datasets, det, gt_dict, random_case, random_segm_case
from tests.metrics.test_tide import comparable_case, hand_records

NAMES = {"ClassError": "Cls", "BoxError": "Loc", "OtherError": "Both", "DuplicateError": "Dupe",
         "BackgroundError": "Bkg", "MissedError": "Miss"}


def _by_image(gt: dict[str, Any], results: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The case with annotations and results in image order (stable), the order of a Dataset's rows, so that
    row i of each side is record i of what tidecv is given."""
    row_of = {im["id"]: i for i, im in enumerate(gt["images"])}
    gt = {**gt, "annotations": sorted(gt["annotations"], key=lambda a: row_of[a["image_id"]])}
    return gt, sorted(results, key=lambda r: row_of[r["image_id"]])


def _need_tidecv() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tidecv's imports (seaborn, opencv) may warn under newer numpy/matplotlib
        return pytest.importorskip("tidecv")


def _tidecv(gt: dict[str, Any], results: list[dict[str, Any]], mode: str, *, max_dets: int = 100,
            pos_thr: float = 0.5, bg_thr: float = 0.1) -> dict[str, Any]:
    """tidecv's numbers (divided by 100) and the error type of each record, built through its ``Data`` API."""
    tidecv = _need_tidecv()
    from tidecv import functions

    size = {im["id"]: (im["width"], im["height"]) for im in gt["images"]}
    truth = tidecv.Data("gt", max_dets=max_dets)
    for im in gt["images"]:
        truth.add_image(im["id"], im["file_name"])
    for c in gt["categories"]:
        truth.add_class(c["id"], c["name"])
    for a in gt["annotations"]:
        mask = functions.toRLE(a["segmentation"], *size[a["image_id"]]) if mode == "mask" else None
        add = truth.add_ignore_region if a.get("iscrowd") else truth.add_ground_truth
        add(a["image_id"], a["category_id"], a["bbox"], mask)
    pred = tidecv.Data("pred")
    for r in results:
        pred.add_detection(r["image_id"], r["category_id"], r["score"], r.get("bbox"), r.get("segmentation"))
    tide = tidecv.TIDE(pos_threshold=pos_thr, background_threshold=bg_thr, mode=mode)
    with contextlib.redirect_stdout(io.StringIO()):
        run = tide.evaluate(truth, pred, mode=mode)
        main = tide.get_main_errors()["pred"]
        special = tide.get_special_errors()["pred"]
    pred_err: dict[int, str] = {}
    truth_err: dict[int, str] = {}
    for e in run.errors:
        name = NAMES[type(e).__name__]
        if name == "Miss":
            truth_err[e.gt["_id"]] = name
        else:
            pred_err[e.pred["_id"]] = name
    delta = {k: v / 100 for k, v in main.items()}
    delta.update(FP=special["FalsePos"] / 100, FN=special["FalseNeg"] / 100)
    return {"ap": run.ap / 100, "delta": delta, "counts": {k.short_name: v for k, v in run.count_errors().items()},
            "pred_err": pred_err, "truth_err": truth_err}


def _check(gt: dict[str, Any], results: list[dict[str, Any]], iou_type: str = "bbox", **opts: Any) -> TideResult:
    gt, results = _by_image(gt, results)
    ref = _tidecv(gt, results, "mask" if iou_type == "segm" else "bbox", **opts)
    truth, pred = datasets(gt, results)
    r = tide_errors(truth, pred, iou_type=iou_type, **opts)
    assert r.ap_base == pytest.approx(ref["ap"], abs=1e-12)
    for name, v in ref["delta"].items():
        assert r.delta_ap[name] == pytest.approx(v, abs=1e-12), name
    assert dict(r.counts) == ref["counts"]
    got = {i: TideResult.CODES[c] for i, c in enumerate(r.pred_error.tolist()) if c not in (r.TP, r.SKIPPED)}
    assert got == ref["pred_err"]
    assert {i for i, c in enumerate(r.truth_error.tolist()) if c == r.MISS} == set(ref["truth_err"])
    return r


def test_hand_case_equals_tidecv() -> None:
    r = _check(*hand_records())
    assert r.counts["Bkg"] == 3  # the prediction in the crowd region included, as tidecv counts it


@pytest.mark.parametrize("seed", range(12))
def test_boxes_equal_tidecv(seed: int) -> None:
    gt, results = random_case(seed, n_images=10, max_dt=16, crowd_rate=0.15)
    _check(gt, results)


@pytest.mark.parametrize(("seed", "opts"), [
    pytest.param(20, {"max_dets": 3}, id="max-dets-3"),  # images past max_dets: the cut is over all classes
    pytest.param(21, {"max_dets": 1}, id="max-dets-1"),
    pytest.param(22, {"pos_thr": 0.75, "bg_thr": 0.3}, id="thresholds"),
    pytest.param(23, {"pos_thr": 0.3, "bg_thr": 0.3}, id="bg-equals-pos"),
])
def test_options_equal_tidecv(seed: int, opts: dict[str, Any]) -> None:
    gt, results = random_case(seed, n_images=10, max_dt=20, decimals=0)  # integer boxes: IoU ties
    r = _check(gt, results, **opts)
    if "max_dets" in opts:
        assert (r.pred_error == r.SKIPPED).any()


@pytest.mark.parametrize("seed", range(4))
def test_masks_equal_tidecv(seed: int) -> None:
    gt, results = random_segm_case(seed, n_images=8)
    _check(gt, results, iou_type="segm")


def test_benchmark_case_equals_tidecv(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark's generated COCO-like case (80 classes, 1% crowd, score ties), 60 images."""
    _need_tidecv()
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from metrics_bench import make_bbox

    gt, results = make_bbox(60, seed=3)
    _check(json.loads(json.dumps(gt)), results)


# -- hotcoco -------------------------------------------------------------------------------------------------

def _hotcoco(gt: dict[str, Any], results: list[dict[str, Any]], tmp_path: Path) -> dict[str, Any]:
    hotcoco = pytest.importorskip("hotcoco")
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = hotcoco.COCO(str(tmp_path / "gt.json"))
        ev = hotcoco.COCOeval(coco_gt, coco_gt.load_res(str(tmp_path / "dt.json")), "bbox")
        ev.evaluate()
    out: dict[str, Any] = ev.tide_errors(pos_thr=0.5, bg_thr=0.1)
    return out


@pytest.mark.parametrize("seed", range(8))
def test_equals_hotcoco_where_the_definitions_meet(seed: int, tmp_path: Path) -> None:
    """hotcoco follows tidecv's definitions on COCO's own matching: on ``comparable_case`` with no overlapping
    truth objects its base AP, all eight dAP and the six counts are maslow's."""
    gt, results = comparable_case(seed, separate=True)
    hot = _hotcoco(gt, results, tmp_path)
    r = tide_errors(*datasets(gt, results))
    assert sum(r.counts.values()) > 0
    assert r.ap_base == pytest.approx(hot["ap_base"], abs=1e-12)
    assert dict(r.counts) == hot["counts"]
    for name in TideResult.DELTA_TYPES:
        assert r.delta_ap[name] == pytest.approx(hot["delta_ap"][name], abs=1e-12), name


def test_hotcoco_differs_on_crowds_and_classes_without_truth(tmp_path: Path) -> None:
    """Where the definitions part: COCO ignores a prediction whose intersection over its area with a crowd region
    is 0.5 (tidecv: only above 0.5), and leaves out of the mean a class predicted without truth (tidecv: AP 0)."""
    gt = gt_dict([(1, 100, 100), (2, 100, 100)], [ann(1, [0, 0, 10, 10], 1, iscrowd=1), ann(2, [0, 0, 10, 10], 1)],
                 cats=(1, 2))
    results = [det(1, [5, 0, 10, 10], 0.9, 1), det(2, [0, 0, 10, 10], 0.5, 1), det(2, [60, 60, 10, 10], 0.4, 2)]
    hot = _hotcoco(gt, results, tmp_path)
    r = tide_errors(*datasets(gt, results))
    assert hot["ap_base"] == pytest.approx(1.0) and hot["counts"]["Bkg"] == 1  # the crowd one ignored; class 2 out
    assert r.ap_base == pytest.approx((0.5 + 0.0) / 2) and r.counts["Bkg"] == 2  # an FP before the TP; class 2: 0
