"""Per-class AR (``MapResult.ar_per_class``), AR named by its maxDets (``ar_by_max_dets``, ``stat_max_dets``)
and the per-class frame with repeated IoU thresholds, against pycocotools (and torchmetrics where installed)."""

from __future__ import annotations

import contextlib
import io
import json
import math
from typing import Any

import numpy as np
import pytest

from maslow.metrics import MapResult, coco_map
from tests.metrics.cocodata import check, datasets, pycoco, pycoco_params, random_case, random_keypoint_case


def _case(seed: int, *, decimals: int = 2) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A random box case whose second category has predictions but no truth objects (a nan row)."""
    gt, res = random_case(seed, n_images=16, n_cats=5, decimals=decimals)
    gone = gt["categories"][1]["id"]
    gt["annotations"] = [a for a in gt["annotations"] if a["category_id"] != gone]
    return gt, res


def _nan_for_minus_one(a: np.ndarray) -> np.ndarray:
    return np.where(a == -1, np.nan, a)


@pytest.mark.parametrize("opts", [
    pytest.param({}, id="defaults"),
    pytest.param({"max_dets": (5, 50)}, id="short-ladder"),
    pytest.param({"max_dets": (1, 10, 100, 300)}, id="four-maxdets"),
    pytest.param({"area_ranges": {"any": (0.0, 1e10), "big": (400.0, 1e10)}}, id="no-area-all"),
    pytest.param({"use_cats": False}, id="class-agnostic"),
    pytest.param({"iou_thresholds": [0.5, 0.75, 0.5, 0.95]}, id="repeated-iou"),
])
def test_ar_per_class_is_pycocotools_recall_at_area_all_and_the_largest_maxdets(opts: dict[str, Any]) -> None:
    gt, res = _case(1)
    result, ev = check(gt, res, **opts)  # the arrays stay pycocotools' cell for cell
    a = result.area_names.index("all") if "all" in result.area_names else 0
    recall = ev.eval["recall"][:, :, a, -1]  # (T, K) at the largest maxDets
    assert result.ar_per_class.shape == (len(result.class_names), len(result.iou_thresholds))
    np.testing.assert_array_equal(result.ar_per_class, _nan_for_minus_one(recall).T)
    if opts.get("use_cats", True):
        assert np.isnan(result.ar_per_class[1]).all()  # the class without truth objects
        assert not np.isnan(np.delete(result.ar_per_class, 1, axis=0)).any()
    assert not result.ar_per_class.flags.writeable and not result.recall.flags.writeable
    assert (result.recall[:, :, a, -1] == recall).all()  # nan written into a copy, not into recall


def _per_class_stats(gt: dict[str, Any], res: list[dict[str, Any]], **params: Any) -> dict[int, np.ndarray]:
    """pycocotools' summary of each category alone (``params.catIds = [id]``), as torchmetrics computes its
    per-class numbers."""
    ev = pycoco(gt, res, summarize=False, **params)
    out = {}
    for c in sorted(c["id"] for c in gt["categories"]):
        with contextlib.redirect_stdout(io.StringIO()):
            ev.params.catIds = [c]
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        out[c] = np.asarray(ev.stats)
    return out


@pytest.mark.parametrize("max_dets", [(1, 10, 100), (1, 5, 50)], ids=["default", "custom-ladder"])
def test_ar_per_class_row_mean_is_pycocotools_ar_of_that_class_alone(max_dets: tuple[int, ...]) -> None:
    gt, res = _case(2)
    result = coco_map(*datasets(gt, res), max_dets=max_dets)
    per_class = _per_class_stats(gt, res, maxDets=list(max_dets))
    ar = result.ar_per_class.mean(axis=1)
    df = result.to_pandas()
    for k, c in enumerate(sorted(per_class)):
        expected = per_class[c][8]  # AR at maxDets[2], the largest of a ladder of three
        if expected == -1:
            assert math.isnan(ar[k]) and math.isnan(df["ar"][k])
        else:
            assert ar[k] == expected and df["ar"][k] == expected  # bit for bit
            assert float(np.mean(result.ar_per_class[k])) == expected


def test_ar_per_class_equals_torchmetrics_mar_per_class() -> None:
    pytest.importorskip("torchmetrics")
    import torch
    from torchmetrics.detection import MeanAveragePrecision

    gt, res = _case(3, decimals=0)  # whole pixels: torchmetrics' float32 boxes are exact
    for i, a in enumerate(gt["annotations"]):  # torchmetrics numbers them from 1: no pycocotools id-0 quirk
        a["id"] = i + 1
    for max_dets in ([1, 10, 100], [1, 5, 50]):
        metric = MeanAveragePrecision(class_metrics=True, max_detection_thresholds=max_dets)
        preds, targets = [], []
        for im in gt["images"]:
            d = [r for r in res if r["image_id"] == im["id"]]
            t = [a for a in gt["annotations"] if a["image_id"] == im["id"]]

            def xyxy(rows: list[dict[str, Any]]) -> Any:
                b = torch.tensor([r["bbox"] for r in rows], dtype=torch.float64).reshape(-1, 4)
                return torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], dim=1)

            preds.append({"boxes": xyxy(d), "scores": torch.tensor([r["score"] for r in d], dtype=torch.float64),
                          "labels": torch.tensor([r["category_id"] for r in d], dtype=torch.long)})
            targets.append({"boxes": xyxy(t), "labels": torch.tensor([a["category_id"] for a in t], dtype=torch.long),
                            "iscrowd": torch.tensor([a["iscrowd"] for a in t], dtype=torch.long),
                            "area": torch.tensor([a["area"] for a in t], dtype=torch.float64)})
        metric.update(preds, targets)
        out = metric.compute()
        # torchmetrics' default thresholds are torch.linspace's float32 (0.6000000238...): the same here, so an IoU
        # exactly at 0.6 is decided alike
        result = coco_map(*datasets(gt, res), max_dets=tuple(max_dets), iou_thresholds=metric.iou_thresholds)
        ids = sorted(c["id"] for c in gt["categories"])
        tm = dict(zip(out["classes"].tolist(), out[f"mar_{max_dets[-1]}_per_class"].tolist(), strict=True))
        for k, c in enumerate(ids):
            if c not in tm:
                continue
            ar = float(np.mean(result.ar_per_class[k]))
            assert (tm[c] == -1 and math.isnan(ar)) or tm[c] == pytest.approx(ar, abs=1e-6)
        for m in max_dets:  # torchmetrics names its keys by the ladder: mar_5 is AR at 5
            assert float(out[f"mar_{m}"]) == pytest.approx(result.ar_by_max_dets[m], abs=1e-6)


def test_ar_and_stats_are_named_by_the_maxdets_they_read() -> None:
    gt, res = _case(4)
    truth, pred = datasets(gt, res)
    result = coco_map(truth, pred, max_dets=(1, 5, 50))
    ev = pycoco(gt, res, maxDets=[1, 5, 50])
    assert list(result.ar_by_max_dets) == [1, 5, 50]
    # pycocotools prints "AR @[ ... maxDets=  5 ]" for stats[7], the field named mar_10
    assert result.ar_by_max_dets[5] == ev.stats[7] == result.mar_10
    assert result.ar_by_max_dets[50] == ev.stats[8] == result.mar_100
    assert result.ar_by_max_dets[1] == ev.stats[6] == result.mar_1
    named = dict(zip(result.stat_names, result.stat_max_dets, strict=True))
    assert named == {"map_50_95": 100, "map_50": 50, "map_75": 50, "map_small": 50, "map_medium": 50,
                     "map_large": 50, "mar_1": 1, "mar_10": 5, "mar_100": 50, "mar_small": 50, "mar_medium": 50,
                     "mar_large": 50}
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert d["stat_max_dets"] == named
    assert d["ar_by_max_dets"] == {"1": ev.stats[6], "5": ev.stats[7], "50": ev.stats[8]}
    assert d["ar_per_class"] == [[None if math.isnan(v) else v for v in row] for row in result.ar_per_class.tolist()]
    with pytest.raises(KeyError):
        result.ar_by_max_dets[10]  # not in this ladder: no silent neighbour
    default = coco_map(truth, pred)
    assert default.ar_by_max_dets == {1: default.mar_1, 10: default.mar_10, 100: default.mar_100}


def _ar_from_recall(result: MapResult, recall: np.ndarray, max_dets: int) -> float:
    """pycocotools' ``_summarize(0, areaRng="all", maxDets=max_dets)`` on its recall array."""
    s = recall[:, :, result.area_names.index("all"), result.max_dets.index(max_dets)]
    return float(np.mean(s[s > -1])) if (s > -1).any() else math.nan


def test_ar_by_max_dets_covers_a_ladder_past_three_and_a_short_one() -> None:
    gt, res = _case(5)
    result, ev = check(gt, res, max_dets=(1, 10, 100, 300))
    assert list(result.ar_by_max_dets) == [1, 10, 100, 300]
    for m in result.max_dets:  # 300 is in no summary stat
        assert result.ar_by_max_dets[m] == _ar_from_recall(result, ev.eval["recall"], m)
    short, ev = check(gt, res, max_dets=(5, 50))
    named = dict(zip(short.stat_names, short.stat_max_dets, strict=True))
    assert named["mar_1"] == 5 and named["mar_10"] == 50 and named["mar_100"] is None and named["map_50"] is None
    assert math.isnan(short.mar_100) and short.ar_by_max_dets[50] == _ar_from_recall(short, ev.eval["recall"], 50)


def test_keypoint_stats_read_maxdets_20() -> None:
    gt, res = random_keypoint_case(1)
    result, ev = check(gt, res, "keypoints")
    assert result.stat_max_dets == (20,) * 10
    assert result.ar_by_max_dets == {20: result.mar_20} and result.mar_20 == ev.stats[5]
    np.testing.assert_array_equal(result.ar_per_class, _nan_for_minus_one(ev.eval["recall"][:, :, 0, -1]).T)


@pytest.mark.parametrize("thresholds, names", [
    pytest.param([0.5, 0.75, 0.5], ["0.50", "0.75", "0.50#2"], id="repeated"),
    pytest.param([0.5, 0.5, 0.501], ["0.500", "0.500#2", "0.501"], id="repeated-and-close"),
    pytest.param(None, [f"{t:.2f}" for t in np.linspace(0.5, 0.95, 10)], id="default"),
])
def test_to_pandas_keeps_a_column_for_every_threshold(thresholds: list[float] | None, names: list[str]) -> None:
    gt, res = _case(6)
    opts: dict[str, Any] = {} if thresholds is None else {"iou_thresholds": thresholds}
    result, _ = check(gt, res, **opts)  # pycocotools evaluates a repeated threshold twice: same arrays
    df = result.to_pandas()
    assert df.columns.tolist() == ["class", "ap", *[f"ap_{n}" for n in names], "ar", *[f"ar_{n}" for n in names]]
    for t, n in enumerate(names):
        np.testing.assert_array_equal(df[f"ap_{n}"].to_numpy(), result.ap_per_class[:, t])
        np.testing.assert_array_equal(df[f"ar_{n}"].to_numpy(), result.ar_per_class[:, t])
    # the "ap" column averages exactly the columns shown (a repeated threshold used to lose its column but not
    # its weight in the mean)
    shown = df[[f"ap_{n}" for n in names]].to_numpy()
    np.testing.assert_allclose(df["ap"].to_numpy(), shown.mean(axis=1), rtol=0, atol=1e-15)
    ev = pycoco(gt, res, **pycoco_params(**opts))
    assert result.map_50_95 == ev.stats[0]  # the repeat counts twice in pycocotools' mean too
