"""Calibration of detection scores: bins as scikit-learn's calibration_curve, ECE/MCE as hotcoco's
COCOeval.calibration, and hand-built cases (what is correct, what is left out)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.errors import InvalidDatasetError
from maslow.metrics import MatchTable, coco_matches
from maslow.metrics.calibration import detection_calibration, plot_reliability
from maslow.sample import shapes
from tests.metrics.cocodata import datasets, random_case
from tests.metrics.simulated import simulate


def _one_image(truth_boxes: list[list[float]], pred_boxes: list[list[float]], scores: list[float],
               crowd: list[bool] | None = None) -> tuple[Dataset, Dataset]:
    images = Images(path=np.array(["a.jpg"], object), width=[200], height=[200])
    schema = LabelSchema.from_names(["x"])
    n, m = len(truth_boxes), len(pred_boxes)
    truth = Dataset(schema, images, Annotations(image=np.zeros(n, np.int64), label=np.zeros(n, np.int64),
                                                box=np.asarray(truth_boxes, float).reshape(-1, 4),
                                                iscrowd=np.asarray(crowd if crowd else [False] * n)))
    pred = truth.replace(annotations=Annotations(image=np.zeros(m, np.int64), label=np.zeros(m, np.int64),
                                                 box=np.asarray(pred_boxes, float).reshape(-1, 4),
                                                 score=np.asarray(scores, float)))
    return truth, pred


def test_bins_equal_scikit_learn_calibration_curve() -> None:
    from sklearn.calibration import calibration_curve

    truth = shapes(60, seed=5)
    pred = simulate(truth, seed=5, fp_per_image=1.5)
    cal = detection_calibration(truth, pred, n_bins=8)
    status = coco_matches(truth, pred, iou_thresholds=[0.5]).pred_status[:, 0]
    kept = (status == MatchTable.TP) | (status == MatchTable.FP)
    s = pred.annotations.score[kept]
    y = status[kept] == MatchTable.TP
    assert not np.isin(np.round(s * 8, 9), np.arange(9)).any()  # no score on a bin edge (the two close them apart)
    prob_true, prob_pred = calibration_curve(y, s, n_bins=8, strategy="uniform")
    has = cal.count > 0
    np.testing.assert_allclose(cal.accuracy[has], prob_true, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cal.confidence[has], prob_pred, rtol=0, atol=1e-12)
    counts = np.histogram(s, bins=np.linspace(0, 1, 9))[0]
    np.testing.assert_array_equal(cal.count, counts)
    gap = np.abs(prob_true - prob_pred)
    assert cal.ece == pytest.approx(float(np.sum(counts[has] / counts.sum() * gap)), abs=1e-12)
    assert cal.mce == pytest.approx(float(gap.max()), abs=1e-12)
    assert cal.n_predictions == int(kept.sum()) == int(cal.count.sum()) == int(cal.n_per_class.sum())


def test_equals_hotcoco_calibration(tmp_path: Path) -> None:
    hotcoco = pytest.importorskip("hotcoco")
    gt, res = random_case(31, n_images=30, crowd_rate=0.1)
    truth, pred = datasets(gt, res)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(res))
    coco = hotcoco.COCO(str(tmp_path / "gt.json"))
    ev = hotcoco.COCOeval(coco, coco.load_res(str(tmp_path / "dt.json")), "bbox")
    ev.evaluate()
    for thr, bins in ((0.5, 10), (0.75, 7)):
        h = ev.calibration(n_bins=bins, iou_threshold=thr)
        cal = detection_calibration(truth, pred, iou_threshold=thr, n_bins=bins)
        assert cal.ece == pytest.approx(h["ece"], abs=1e-12) and cal.mce == pytest.approx(h["mce"], abs=1e-12)
        assert cal.n_predictions == h["num_detections"]
        assert cal.count.tolist() == [b["count"] for b in h["bins"]]
        has = cal.count > 0
        np.testing.assert_allclose(cal.confidence[has], [b["avg_confidence"] for b in h["bins"] if b["count"]],
                                   atol=1e-12)
        np.testing.assert_allclose(cal.accuracy[has], [b["avg_accuracy"] for b in h["bins"] if b["count"]],
                                   atol=1e-12)
        per = h["per_category"]  # keyed by category name
        for k, name in enumerate(cal.class_names):
            if cal.n_per_class[k]:
                assert cal.ece_per_class[k] == pytest.approx(per[name], abs=1e-12)


def test_an_overconfident_model_and_a_perfect_one() -> None:
    # one object, ten predictions at 0.9: one right (the best IoU), nine far away -> accuracy 0.1 at 0.9
    truth, pred = _one_image([[0, 0, 20, 20]], [[0, 0, 20, 20]] + [[100 + i, 100, 110 + i, 110] for i in range(9)],
                             [0.9] * 10)
    cal = detection_calibration(truth, pred)
    assert cal.ece == pytest.approx(0.8) and cal.mce == pytest.approx(0.8) and cal.count[9] == 10
    perfect = truth.replace(annotations=truth.annotations.with_columns(score=np.ones(1)))
    assert detection_calibration(truth, perfect).ece == 0.0


def test_what_is_left_out_and_what_is_wrong() -> None:
    # a prediction on a crowd region is ignored (left out); one below the IoU threshold is wrong
    truth, pred = _one_image([[0, 0, 20, 20], [50, 50, 150, 150]], [[0, 0, 20, 14], [60, 60, 80, 80]], [0.7, 0.3],
                             crowd=[False, True])
    at_half = detection_calibration(truth, pred, iou_threshold=0.5)
    strict = detection_calibration(truth, pred, iou_threshold=0.75)
    assert at_half.n_predictions == strict.n_predictions == 1  # the crowd match is left out at both
    assert at_half.accuracy[7] == 1.0 and strict.accuracy[7] == 0.0  # IoU 0.7: right at 0.5, wrong at 0.75
    empty = pred.replace(annotations=pred.annotations.take(np.zeros(0, np.int64)))
    none = detection_calibration(truth, empty)
    assert np.isnan(none.ece) and none.n_predictions == 0 and np.isnan(none.ece_per_class).all()


def test_scores_must_be_confidences() -> None:
    truth, pred = _one_image([[0, 0, 20, 20]], [[0, 0, 20, 20], [5, 5, 9, 9]], [0.5, 3.2])
    with pytest.raises(InvalidDatasetError, match=r"score row 1: must be a confidence in \[0, 1\].*got 3.2"):
        detection_calibration(truth, pred)
    with pytest.raises(ValueError, match="n_bins"):
        detection_calibration(truth, truth.replace(annotations=pred.annotations), n_bins=0)


def test_to_dict_to_pandas_and_the_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    truth = shapes(20, seed=6)
    a, b = detection_calibration(truth, simulate(truth, seed=6)), detection_calibration(truth, simulate(truth, seed=7))
    d = json.loads(json.dumps(a.to_dict(), allow_nan=False))
    assert len(d["bins"]) == 10 and d["ece"] == pytest.approx(a.ece)
    df = a.to_pandas()
    assert list(df.columns) == ["lower", "upper", "confidence", "accuracy", "count", "gap"] and df["count"].sum() == \
        a.n_predictions
    png = plot_reliability([a, b], tmp_path / "r.png", labels=["A", "B"])
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="labels"):
        plot_reliability([a, b], tmp_path / "x.png", labels=["A"])


def test_doctests() -> None:
    import doctest

    import maslow.metrics.calibration

    failures, tried = doctest.testmod(maslow.metrics.calibration)
    assert tried and not failures
