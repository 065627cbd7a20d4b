"""``voc_map``: the Pascal VOC protocol on hand-computed cases (duplicates, difficult objects, crowds, ties, classes
without truth or detections, 11-point against all-point AP, the threshold rule and pixel conventions), options,
errors, the result object and the CLI module. The comparisons with a plain loop implementation of the classic
algorithm, with ``coco_map`` and with other implementations are in ``test_voc_reference.py``."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.cli._metrics_voc import eval_voc, voc_options
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import InvalidDatasetError, MaslowError
from maslow.metrics import coco_matches
from maslow.metrics.voc import VocResult, voc_map
from maslow.sample import oriented, oriented_predictions, shapes

Box = Sequence[float]


def make(truth: Sequence[tuple[int, int, Box]], pred: Sequence[tuple[int, int, Box, float]], *,
         classes: Sequence[str] = ("a",), n_images: int = 1, difficult: Sequence[Any] | None = None,
         crowd: Sequence[bool] | np.ndarray | None = None) -> tuple[Dataset, Dataset]:
    """Truth rows (image, class, xyxy) and prediction rows (image, class, xyxy, score), each sorted by image."""
    schema = LabelSchema(classes=tuple(ClassDef(c) for c in classes))
    images = Images(path=obj_array([f"{i}.jpg" for i in range(n_images)]), width=np.full(n_images, 500),
                    height=np.full(n_images, 500))
    attrs = {} if difficult is None else {"difficult": obj_array(difficult)}
    t = Annotations(image=np.asarray([r[0] for r in truth], np.int64), label=np.asarray([r[1] for r in truth], np.int64),
                    box=np.asarray([r[2] for r in truth], np.float64).reshape(-1, 4),
                    iscrowd=None if crowd is None else np.asarray(crowd, bool), attributes=attrs)
    p = Annotations(image=np.asarray([r[0] for r in pred], np.int64), label=np.asarray([r[1] for r in pred], np.int64),
                    box=np.asarray([r[2] for r in pred], np.float64).reshape(-1, 4),
                    score=np.asarray([r[3] for r in pred], np.float64))
    ds = Dataset(schema=schema, images=images, annotations=t)
    return ds, ds.replace(annotations=p)


def status(r: VocResult) -> list[str]:
    return [str(v) for v in r.status_names(r.pred_status).tolist()]


# -- hand-computed cases ---------------------------------------------------------------------------------------

def test_duplicates_and_misses() -> None:
    truth, pred = make([(0, 0, [0, 0, 10, 10])],
                       [(0, 0, [0, 0, 10, 10], 0.9), (0, 0, [0, 0, 10, 9], 0.8), (0, 0, [50, 50, 60, 60], 0.7)])
    r = voc_map(truth, pred)
    assert status(r) == ["tp", "fp", "fp"]
    assert r.pred_match.tolist() == [0, 0, -1]  # the duplicate names the object it duplicated
    np.testing.assert_allclose(r.precision[0], [1, 1 / 2, 1 / 3])
    np.testing.assert_allclose(r.recall[0], [1, 1, 1])
    assert r.map == 1.0 and r.n_tp_per_class.tolist() == [1] and r.n_fp_per_class.tolist() == [2]
    assert r.truth_status.tolist() == [VocResult.TP] and r.truth_match.tolist() == [0]


def test_best_object_taken_is_a_duplicate_unlike_coco() -> None:
    # A = [0, 10], B = [4, 14]; the second detection overlaps A by 9/11 and B by 7/13 (>= 0.5): VOC judges it
    # against A, already taken (a duplicate); COCO gives it the best free object, B
    truth, pred = make([(0, 0, [0, 0, 10, 10]), (0, 0, [4, 0, 14, 10])],
                       [(0, 0, [0, 0, 10, 10], 0.9), (0, 0, [1, 0, 11, 10], 0.8)])
    r = voc_map(truth, pred)
    assert status(r) == ["tp", "fp"] and r.pred_match.tolist() == [0, 0]
    assert r.pred_iou[1] == pytest.approx(9 / 11)
    assert r.truth_status.tolist() == [VocResult.TP, VocResult.FN]
    table = coco_matches(truth, pred, iou_thresholds=[0.5], max_dets=[100])
    assert table.pred_status[:, 0].tolist() == [table.TP, table.TP]


@pytest.mark.parametrize(("first", "second", "expected"), [
    pytest.param([0, 0, 10, 10], [4, 0, 14, 10], ["tp", "fp"], id="taken-first"),
    pytest.param([4, 0, 14, 10], [0, 0, 10, 10], ["tp", "tp"], id="free-first"),
])
def test_equal_iou_goes_to_the_first_object_in_row_order(first: Box, second: Box, expected: list[str]) -> None:
    # the second detection overlaps both objects by 80 / 120; the first detection takes [0, 10]
    truth, pred = make([(0, 0, first), (0, 0, second)],
                       [(0, 0, [0, 0, 10, 10], 0.9), (0, 0, [2, 0, 12, 10], 0.8)])
    r = voc_map(truth, pred)
    assert status(r) == expected and r.pred_match[1] == 0


def test_difficult_matched_and_unmatched() -> None:
    # a difficult object detected twice (both ignored, no duplicate), a difficult object never detected (no miss),
    # a detection whose best object is difficult though a normal one also reaches the threshold (ignored)
    truth, pred = make(
        [(0, 0, [0, 0, 10, 10]), (0, 0, [100, 100, 110, 110]), (0, 0, [200, 200, 210, 210]), (0, 0, [1, 0, 11, 10]),
         (0, 0, [300, 300, 310, 310])],
        [(0, 0, [0, 0, 10, 10], 0.9), (0, 0, [0, 1, 10, 11], 0.8), (0, 0, [200, 200, 210, 210], 0.7),
         (0, 0, [300, 300, 310, 310], 0.6)],
        difficult=[True, "true", None, 2, False])  # DOTA_devkit reads any level but 0 as difficult
    r = voc_map(truth, pred)
    assert status(r) == ["ignored", "ignored", "tp", "tp"]
    assert r.n_pos_per_class.tolist() == [2] and r.n_ignored_truth_per_class.tolist() == [3]
    assert r.truth_status.tolist() == [VocResult.IGNORED] * 2 + [VocResult.TP, VocResult.IGNORED, VocResult.TP]
    np.testing.assert_array_equal(r.precision[0], [0, 0, 1, 1])  # ignored first: precision 0 (0 / eps)
    np.testing.assert_array_equal(r.recall[0], [0, 0, 0.5, 1])
    assert r.map == 1.0
    # without the flags the first object is found, its second detection is a duplicate, and row 3 is missed
    plain = voc_map(truth, pred, difficult=None)
    assert status(plain) == ["tp", "fp", "tp", "tp"] and plain.n_pos_per_class.tolist() == [5]
    with pytest.raises(InvalidDatasetError, match=r"attributes\['difficult'\] row 1: .* got 'maybe' \(1 rows\)"):
        voc_map(*make([(0, 0, [0, 0, 1, 1])] * 2, [], difficult=[False, "maybe"]))


def test_difficult_flag_values() -> None:
    values = [False, "0", " 1 ", "Yes", 0.0, np.int64(3), "no", None, np.True_, "FALSE"]
    r = voc_map(*make([(0, 0, [0, 0, 1, 1])] * len(values), [], difficult=values))
    assert (r.truth_status == r.IGNORED).tolist() == [False, False, True, True, False, True, False, False, True, False]
    for bad in (0.5, [1], "maybe"):
        with pytest.raises(InvalidDatasetError, match="a difficult flag must be"):
            voc_map(*make([(0, 0, [0, 0, 1, 1])], [], difficult=[bad]))


def test_crowd_regions_are_ignored_like_difficult_by_plain_iou() -> None:
    # the detection covers a quarter of the crowd region: plain IoU 0.25 (COCO's crowd rule would say 1.0)
    truth, pred = make([(0, 0, [0, 0, 20, 20]), (0, 0, [100, 100, 110, 110])],
                       [(0, 0, [0, 0, 10, 10], 0.9), (0, 0, [0, 0, 20, 20], 0.8), (0, 0, [100, 100, 110, 110], 0.7)],
                       crowd=[True, False])
    r = voc_map(truth, pred)
    assert status(r) == ["fp", "ignored", "tp"] and r.n_pos_per_class.tolist() == [1]
    assert r.pred_iou[1] == 1.0 and math.isnan(r.pred_iou[0])


@pytest.mark.parametrize(("rows", "ap"), [
    pytest.param([(0, 0, [100, 100, 110, 110], 0.5), (0, 0, [0, 0, 10, 10], 0.5)], 0.5, id="fp-first"),
    pytest.param([(0, 0, [0, 0, 10, 10], 0.5), (0, 0, [100, 100, 110, 110], 0.5)], 1.0, id="tp-first"),
])
def test_score_ties_in_row_order(rows: list[tuple[int, int, Box, float]], ap: float) -> None:
    r = voc_map(*make([(0, 0, [0, 0, 10, 10])], rows))
    assert r.map == ap
    np.testing.assert_array_equal(r.scores[0], [0.5, 0.5])


def test_ties_across_images_follow_the_image_order() -> None:
    truth, pred = make([(1, 0, [0, 0, 10, 10])], [(0, 0, [0, 0, 10, 10], 0.5), (1, 0, [0, 0, 10, 10], 0.5)],
                       n_images=2)
    r = voc_map(truth, pred)
    assert status(r) == ["fp", "tp"] and r.map == 0.5
    # images in COCO id order, as maslow's COCO evaluation takes them: image row 1 (id 3) before row 0 (id 7)
    images = dataclasses.replace(truth.images, extra={"coco_id": np.asarray([7, 3])})
    r = voc_map(truth.replace(images=images), pred.replace(images=images))
    assert status(r) == ["fp", "tp"] and r.map == 1.0


def test_class_without_truth_and_class_without_detections() -> None:
    truth, pred = make([(0, 0, [0, 0, 10, 10]), (0, 2, [50, 50, 60, 60])],
                       [(0, 0, [0, 0, 10, 10], 0.9), (0, 1, [0, 0, 10, 10], 0.8)], classes=("a", "b", "c"))
    r = voc_map(truth, pred)
    assert r.ap_per_class[0] == 1.0 and math.isnan(r.ap_per_class[1]) and r.ap_per_class[2] == 0.0
    assert r.map == 0.5  # the mean of a and c; b (no object) is left out
    assert status(r) == ["tp", "fp"] and r.n_pred_per_class.tolist() == [1, 1, 0]
    assert np.isnan(r.recall[1]).all() and r.precision[1].tolist() == [0.0]
    empty = voc_map(*make([], [(0, 0, [0, 0, 1, 1], 0.5)]))
    assert math.isnan(empty.map) and json.loads(json.dumps(empty.to_dict(), allow_nan=False))["map"] is None


def test_predictions_of_classes_the_truth_lacks_are_skipped() -> None:
    truth, _ = make([(0, 0, [0, 0, 10, 10])], [])
    other = LabelSchema(classes=(ClassDef("zebra"), ClassDef("a")))
    pred = Dataset(schema=other, images=truth.images, annotations=Annotations(
        image=np.zeros(2, np.int64), label=np.asarray([0, 1]), box=np.asarray([[0, 0, 10, 10]] * 2, np.float64),
        score=np.asarray([0.9, 0.8])))
    r = voc_map(truth, pred)
    assert status(r) == ["skipped", "tp"] and r.n_skipped == 1 and r.map == 1.0


def _curve(seq: str, n_pos: int) -> tuple[Dataset, Dataset]:
    """One image; objects side by side; detection i (score falling) a TP on the next object ('t') or an FP far
    away ('f')."""
    truth = [(0, 0, [20 * j, 0, 20 * j + 10, 10]) for j in range(n_pos)]
    pred, j = [], 0
    for i, c in enumerate(seq):
        box = [20 * j, 0, 20 * j + 10, 10] if c == "t" else [400, 400 + i, 410, 410 + i]
        j += c == "t"
        pred.append((0, 0, box, 1.0 - i / 100))
    return make(truth, pred)


def test_eleven_point_and_all_point_on_a_known_curve() -> None:
    # TP FP TP FP FP TP with 4 objects: recall .25 .25 .5 .5 .5 .75, precision 1 .5 2/3 .5 .4 .5
    truth, pred = _curve("tftfft", 4)
    # all points: .25 * 1 + .25 * 2/3 + .25 * .5 (the envelope at each recall step)
    assert voc_map(truth, pred).map == pytest.approx(0.25 + 0.25 * 2 / 3 + 0.25 * 0.5, abs=1e-15)
    # 11 points: t = 0, .1, .2 -> 1; .3, .4, .5 -> 2/3; .6, .7 -> .5; .8, .9, 1 -> 0
    assert voc_map(truth, pred, metric="voc2007").map == pytest.approx(6 / 11, abs=1e-15)


def test_eleven_points_are_the_python_ports_doubles() -> None:
    # recall 3/10 (0.29999999999999999) is below np.arange's third point (0.30000000000000004): 3/11, not 4/11
    truth, pred = _curve("ttt", 10)
    assert voc_map(truth, pred, metric="voc2007").map == 3 / 11
    assert voc_map(*_curve("tttt", 10), metric="voc2007").map == pytest.approx(5 / 11, abs=1e-15)


def test_threshold_rule_at_exactly_the_threshold() -> None:
    truth, pred = make([(0, 0, [0, 0, 10, 20])], [(0, 0, [0, 0, 10, 10], 0.9)])  # IoU 100 / 200
    assert status(voc_map(truth, pred)) == ["tp"]
    assert status(voc_map(truth, pred, strict_iou=True)) == ["fp"]
    # no overlap never matches, even at threshold 0
    assert status(voc_map(*make([(0, 0, [0, 0, 10, 10])], [(0, 0, [20, 20, 30, 30], 0.9)]), iou_threshold=0)) == ["fp"]


def test_pixel_inclusive_boxes() -> None:
    truth, pred = make([(0, 0, [0, 0, 9, 9])], [(0, 0, [0, 0, 9, 4], 0.9)])
    r = voc_map(truth, pred)
    assert r.pred_status.tolist() == [VocResult.FP]  # 9 * 4 / 81
    r = voc_map(truth, pred, pixel_inclusive=True)
    assert status(r) == ["tp"] and r.pred_iou[0] == 0.5  # 10 * 5 / 100


# -- options, errors, result ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kw", "match"), [
    pytest.param({"iou_type": "keypoints"}, "iou_type must be one of bbox, segm, obb", id="iou-type"),
    pytest.param({"metric": "2012"}, "metric must be 'voc2010' or 'voc2007'", id="metric"),
    pytest.param({"iou_threshold": 1.5}, r"iou_threshold must be a number in \[0, 1\]", id="threshold"),
    pytest.param({"iou_threshold": math.nan}, "iou_threshold", id="threshold-nan"),
    pytest.param({"iou_type": "segm", "pixel_inclusive": True}, "pixel_inclusive applies to iou_type 'bbox'",
                 id="inclusive-masks"),
])
def test_bad_options(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        voc_map(*make([(0, 0, [0, 0, 1, 1])], []), **kw)


def test_bad_inputs() -> None:
    truth, pred = make([(0, 0, [0, 0, 1, 1])], [(0, 0, [0, 0, 1, 1], 0.5)])
    with pytest.raises(InvalidDatasetError, match=r"pred\.annotations\.score"):
        voc_map(truth, pred.replace(annotations=pred.annotations.with_columns(score=None)))
    with pytest.raises(InvalidDatasetError, match=r"pred\.annotations\.box row 0"):
        voc_map(truth, pred.replace(annotations=pred.annotations.with_columns(box=None)))


def test_sample_datasets_perfect_and_result_objects() -> None:
    truth = shapes(30, seed=2)  # with crowd regions: ignored, and their perfect detections too
    pred = truth.replace(annotations=truth.annotations.with_columns(score=np.linspace(1, 0.5, truth.n_annotations)))
    r = voc_map(truth, pred, iou_type="segm")
    assert r.map == 1.0 and r.n_ignored_pred_per_class.sum() == r.n_ignored_truth_per_class.sum() > 0
    assert not r.ap_per_class.flags.writeable and not r.pred_status.flags.writeable
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert d["map"] == 1.0 and [c["class"] for c in d["per_class"]] == list(truth.schema.names)
    assert d["n_tp"] == d["n_pos"] == truth.n_annotations - d["n_ignored_truth"]
    pytest.importorskip("pandas")
    assert r.to_pandas()["n_pos"].tolist() == r.n_pos_per_class.tolist()


# -- the CLI module ---------------------------------------------------------------------------------------------

def test_cli_options() -> None:
    assert voc_options("voc", "bbox", voc_metric=None, voc_strict=False, pixel_inclusive=False, coco_only=[]) \
        == "voc2010"
    assert voc_options("voc", "obb", voc_metric="2007", voc_strict=True, pixel_inclusive=False, coco_only=[]) \
        == "voc2007"
    assert voc_options("coco", "bbox", voc_metric=None, voc_strict=False, pixel_inclusive=False, coco_only=[]) \
        == "voc2010"
    for protocol, kind, kw, match in [
        ("coco", "bbox", {"voc_metric": "2007"}, "--voc-metric goes with --protocol voc, not coco"),
        ("lvis", "bbox", {"voc_strict": True}, "--voc-strict goes with --protocol voc, not lvis"),
        ("voc", "keypoints", {}, "--protocol voc evaluates --iou-type bbox, segm, obb, got keypoints"),
        ("voc", "bbox", {"coco_only": ["--errors"]}, "--errors goes with --protocol coco, not voc"),
        ("voc", "segm", {"pixel_inclusive": True}, "--pixel-inclusive applies to --iou-type bbox"),
        ("voc", "bbox", {"voc_metric": "2012"}, "--voc-metric must be 2007 .* or 2010"),
    ]:
        opts: dict[str, Any] = {"voc_metric": None, "voc_strict": False, "pixel_inclusive": False, "coco_only": [],
                                **kw}
        with pytest.raises(MaslowError, match=match):
            voc_options(protocol, kind, **opts)


def _run_cli(truth: Dataset, pred: Dataset, **kw: Any) -> None:
    opts: dict[str, Any] = {"kind": "bbox", "metric": "voc2010", "iou_threshold": 0.5, "strict_iou": False,
                            "pixel_inclusive": False, "json_out": None, "to_stdout": False, **kw}
    eval_voc(truth, pred, located=contextlib.nullcontext(), notes=[],
             sources={"gt": ("gt.json", "coco", Report()), "pred": ("dets.json", "coco-results", Report())}, **opts)


def test_cli_json_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = oriented(6, seed=1)
    pred = oriented_predictions(truth, seed=1)
    _run_cli(truth, pred, kind="obb", metric="voc2007", to_stdout=True)
    doc = json.loads(capsys.readouterr().out)
    expected = voc_map(truth, pred, iou_type="obb", metric="voc2007")
    assert doc["protocol"] == "voc" and doc["voc"]["metric"] == "voc2007"
    assert doc["voc"]["map"] == pytest.approx(expected.map) and doc["n_pred"] == pred.n_annotations
    out = tmp_path / "voc.json"
    _run_cli(truth, pred, kind="obb", json_out=out, strict_iou=True)
    printed = capsys.readouterr().out
    assert "Pascal VOC obb evaluation" in printed and "plane" in printed and "Wrote" in printed
    assert json.loads(out.read_text())["voc"]["strict_iou"] is True


def test_cli_refuses_label_tasks() -> None:
    truth, pred = make([(0, 0, [0, 0, 1, 1])], [])
    schema = LabelSchema(classes=truth.schema.classes, tasks=(Task.CLASSIFICATION,))
    with pytest.raises(MaslowError, match="--protocol voc evaluates detection"):
        _run_cli(truth.replace(schema=schema), pred.replace(schema=schema))
