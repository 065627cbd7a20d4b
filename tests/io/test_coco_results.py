"""COCO results files: reading against the truth, id checks (off by one), writing what pycocotools' loadRes reads."""

from __future__ import annotations

import contextlib
import io as _io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from maslow import io
from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.types import obj_array
from maslow.errors import FormatError, MaslowWarning
from maslow.io.coco import read_coco, write_coco
from maslow.io.coco_results import parse, read_coco_predictions, write_coco_results
from maslow.sample import shapes
from tests.conftest import shared_path

DATA = Path(__file__).parents[1] / "data"
TRUTH = DATA / "coco" / "instances.json"
RESULTS = DATA / "coco_results" / "results.json"
OD = ("od_metrics_fixture", "annotations")
EXPECTED_EVAL_CASE = [.503647, .696973, .571667, .593252, .557991, .489363,
                      .386813, .593680, .595353, .654764, .603130, .553744]


def dump(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj))
    return path


def coco_eval(truth: Dataset, pred: Dataset, tmp: Path, iou_type: str = "bbox") -> np.ndarray:
    """pycocotools' 12 numbers for files written by maslow."""
    write_coco(truth, tmp / "truth.json")
    write_coco_results(pred, tmp / "pred.json")
    with contextlib.redirect_stdout(_io.StringIO()):
        gt = COCO(str(tmp / "truth.json"))
        dt = gt.loadRes(str(tmp / "pred.json"))
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats)


def test_golden_results_against_golden_truth() -> None:
    truth = read_coco(TRUTH)
    pred, report = parse(RESULTS, like=truth)
    assert len(report) == 0
    assert pred.images is truth.images and pred.schema is truth.schema and pred.root == truth.root
    a = pred.annotations
    assert a.source is not None and set(a.source.tolist()) == {"model"}
    np.testing.assert_array_equal(a.score, [0.95, 0.8, 0.6, 0.3, 0.05])
    np.testing.assert_array_equal(a.image, [0, 0, 1, 1, 2])
    assert [pred.schema.names[k] for k in a.label] == ["cat", "person", "cat", "person", "cat"]
    np.testing.assert_array_equal(a.box, [[0.5, 0, 20, 10], [30, 10, 64, 48], [8, 4, 16, 12], [1, 2, 11, 23],
                                          [0, 0, 40, 30]])  # row 2: the box of its mask, as loadRes computes
    assert a.mask is not None and a.mask[2] is not None
    assert truth.annotations.mask is not None
    np.testing.assert_array_equal(M.decode(a.mask[2]), M.decode(truth.annotations.mask[2]))
    assert a.keypoints is not None
    np.testing.assert_array_equal(a.keypoints[1], [[41, 15, 0.9], [38, 14, 0.7], [50, 20, 0.1]])
    assert np.isnan(a.keypoints[0]).all()


def test_written_results_are_accepted_by_load_res(tmp_path: Path) -> None:
    truth = read_coco(TRUTH)
    pred = read_coco_predictions(RESULTS, like=truth)
    rep = write_coco_results(pred, tmp_path / "r.json")
    assert rep.lossless and rep.n_annotations == 5
    records = json.loads((tmp_path / "r.json").read_text())
    assert records[2]["segmentation"]["counts"] == "T88h00000000000000l?"
    assert records[1]["keypoints"] == [41, 15, 0.9, 38, 14, 0.7, 50, 20, 0.1]
    stats = coco_eval(truth, pred, tmp_path, "bbox")
    assert stats.shape == (12,) and 0 < stats[0] <= 1
    back = read_coco_predictions(tmp_path / "r.json", like=truth)
    np.testing.assert_array_equal(back.annotations.box, pred.annotations.box)
    np.testing.assert_array_equal(back.annotations.score, pred.annotations.score)


def test_shapes_predictions_round_trip_with_masks(tmp_path: Path) -> None:
    truth = shapes(12, seed=3)
    n = truth.n_annotations
    a = truth.annotations
    pred = truth.replace(annotations=a.with_columns(score=np.linspace(0.1, 0.9, n), source=obj_array(["model"] * n)))
    rep = write_coco_results(pred, tmp_path / "p.json")
    assert rep.lost == {"attributes": 2 * n - sum(v is None for v in a.attributes["occluded"]),
                        "iscrowd": int(a.iscrowd.sum())}
    write_coco(truth, tmp_path / "t.json")
    back = read_coco_predictions(tmp_path / "p.json", like=read_coco(tmp_path / "t.json"))
    b = back.annotations
    np.testing.assert_allclose(b.box, a.box, atol=1e-9)
    np.testing.assert_allclose(b.score, pred.annotations.score)
    assert b.mask is not None and a.mask is not None
    for r in range(n):
        np.testing.assert_array_equal(M.decode(b.mask[r]), M.decode(a.mask[r]))
    stats = coco_eval(truth, pred.replace(annotations=pred.annotations.with_columns(iscrowd=None)), tmp_path, "segm")
    assert stats[0] == pytest.approx(1.0)  # a perfect prediction


def test_predictions_without_scores_are_counted_not_written(tmp_path: Path) -> None:
    truth = read_coco(TRUTH)
    rep = write_coco_results(truth, tmp_path / "r.json")
    assert rep.lost["unscored"] == 4 and rep.n_annotations == 0
    assert json.loads((tmp_path / "r.json").read_text()) == []


@pytest.mark.parametrize("iou_type", ["bbox", "segm", "keypoints"])
def test_an_empty_results_file_evaluates_as_no_detections(tmp_path: Path, iou_type: str) -> None:
    from maslow.metrics import coco_map
    from tests.metrics.cocodata import assert_same, pycoco, random_keypoint_case, random_segm_case

    gt = (random_keypoint_case if iou_type == "keypoints" else random_segm_case)(3)[0]
    truth = read_coco(dump(tmp_path / "gt.json", gt))
    pred = read_coco_predictions(dump(tmp_path / "empty.json", []), like=truth)
    assert len(pred.annotations) == 0 and pred.annotations.score is not None
    result = coco_map(truth, pred, iou_type=iou_type)
    assert_same(pycoco(gt, [], iou_type), result)  # pycocotools' loadRes refuses [], so: its empty results
    assert np.nanmax(result.stats) == 0 and (result.precision == 0).any()


# -- real data ---------------------------------------------------------------------------------------
def test_coco_eval_case_reproduces_the_expected_numbers(tmp_path: Path) -> None:
    truth = read_coco(shared_path(*OD, "coco_eval_case", "gts", "sampled_gts_bbox_area.json"))
    for name in ("cocoapi_results.json", "dets/sampled_bbox_results.json"):
        pred, report = parse(shared_path(*OD, "coco_eval_case", name), like=truth)
        assert len(report) == 0 and pred.n_annotations == 734
        np.testing.assert_allclose(coco_eval(truth, pred, tmp_path), EXPECTED_EVAL_CASE, atol=5e-7)


def test_zero_based_detections_match_by_name_and_report_the_off_by_one(tmp_path: Path) -> None:
    truth = read_coco(shared_path(*OD, "gts", "coco_format_v1", "instances_default.json"))
    dets = shared_path(*OD, "dets", "coco_format", "coco_dets.json")
    pred, report = parse(dets, like=truth)
    assert pred.n_annotations == 452
    assert [(i.type, i.severity, i.field) for i in report] == [("ids_off_by_one", "info", "image_id"),
                                                               ("ids_off_by_one", "info", "category_id")]
    stats = coco_eval(truth, pred, tmp_path)
    np.testing.assert_allclose(stats[:3], [.3470, .6100, .3537], atol=5e-5)  # SOURCE.md, remapped by name


def test_zero_based_detections_matched_by_id(tmp_path: Path) -> None:
    truth = read_coco(shared_path(*OD, "gts", "coco_format_v1", "instances_default.json"))
    dets = shared_path(*OD, "dets", "coco_format", "coco_dets.json")
    pred, report = parse(dets, like=truth, match="id")
    off = report.of_type("ids_off_by_one")
    assert [i.severity for i in off] == ["error", "error"] and "Pass id_offset=1" in off[0].message
    assert pred.n_annotations < 452
    pred, report = parse(dets, like=truth, id_offset=1)
    assert pred.n_annotations == 452  # every id maps ...
    assert not report.of_type("ids_off_by_one")
    (files,) = report.of_type("ids_disagree_with_file_names")  # ... but the file's own names show it is wrong
    assert files.severity == "error" and "450 of 452" in files.message and "match='name'" in files.message
    assert report.of_type("ids_disagree_with_category_names")


def test_off_by_one_in_a_results_list(tmp_path: Path) -> None:
    truth = read_coco(TRUTH)  # image ids 7, 9, 12; category ids 1, 3
    recs = json.loads(RESULTS.read_text())
    shifted = [{**r, "category_id": r["category_id"] - 1} for r in recs]
    pred, report = parse(dump(tmp_path / "r.json", shifted), like=truth)
    (off,) = report.of_type("ids_off_by_one")
    assert off.severity == "error" and off.field == "category_id" and "category_offset=1" in off.message
    (unknown,) = report.of_type("coco_unknown_category")
    assert "5 predictions" in unknown.message and pred.n_annotations == 0
    pred, report = parse(tmp_path / "r.json", like=truth, category_offset=1)
    assert len(report) == 0 and pred.n_annotations == 5
    with pytest.warns(MaslowWarning, match="ids_off_by_one"):
        read_coco_predictions(tmp_path / "r.json", like=truth)


def test_unknown_images_and_missing_scores_are_counted(tmp_path: Path) -> None:
    truth = read_coco(TRUTH)
    recs = [{"image_id": 1000 + i, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5} for i in range(3)]
    recs += [{"image_id": 7, "category_id": 1, "bbox": [0, 0, 1, 1]}]
    pred, report = parse(dump(tmp_path / "r.json", recs), like=truth)
    (unknown,) = report.of_type("coco_unknown_image")
    assert unknown.severity == "error" and "3 predictions" in unknown.message and "1000, 1001, 1002" in unknown.message
    (missing,) = report.of_type("missing_score")
    assert missing.record == "[3]"
    assert pred.n_annotations == 1 and np.isnan(pred.annotations.score[0])


def test_results_written_as_xyxy_are_reported(tmp_path: Path) -> None:
    truth = read_coco(TRUTH)
    recs = [{"image_id": 7, "category_id": 1, "bbox": b, "score": 0.5}
            for b in ([40, 20, 60, 40], [35, 30, 50, 45], [2, 2, 10, 10])]
    _, report = parse(dump(tmp_path / "r.json", recs), like=truth)
    assert report.counts() == {"coco_bbox_looks_xyxy": 1}


@pytest.mark.parametrize(("content", "match"), [
    pytest.param("{}", r"must be a results list", id="object-without-annotations"),
    pytest.param('"x"', r"must be a results list", id="string"),
    pytest.param("[1]", r"\[0\]: must be an object", id="record-not-object"),
    pytest.param("[{]", r"malformed JSON", id="malformed"),
])
def test_bad_results_files_raise(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / "r.json").write_text(content)
    with pytest.raises(FormatError, match=match):
        parse(tmp_path / "r.json", like=read_coco(TRUTH))


def test_truth_is_required_and_match_checked(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="like=<truth Dataset>"):
        parse(RESULTS)
    with pytest.raises(FormatError, match="match must be one of"):
        parse(RESULTS, like=read_coco(TRUTH), match="fuzzy")
    with pytest.raises(FormatError, match="match='name' needs the file to list"):
        parse(RESULTS, like=read_coco(TRUTH), match="name")


def test_registry_passes_like_through(tmp_path: Path) -> None:
    truth = read_coco(TRUTH)
    pred = io.read(RESULTS, "coco-results", like=truth)
    assert pred.n_annotations == 5
    assert io.read_coco_predictions is read_coco_predictions
    rep = io.write(pred, tmp_path / "r.json", "coco-results")
    assert rep.n_annotations == 5


@pytest.mark.parametrize("native", ["0", "1"])
def test_keypoint_results_get_the_box_of_their_keypoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         native: str) -> None:
    """Keypoint results without a bbox get the extent of their keypoints (loadRes), NaN values left out; one with
    no number at all keeps no box. Every record with one K: the reader's no-copy path."""
    monkeypatch.setenv("MASLOW_NATIVE", native)
    truth = read_coco(TRUTH)
    rng = np.random.default_rng(3)
    kps = rng.uniform(0, 60, (40, 5, 3)).round(2)
    kps[rng.random((40, 5)) < 0.3] = np.nan
    kps[7] = np.nan
    image_ids = [im["id"] for im in json.loads(TRUTH.read_text())["images"]]
    records = [{"image_id": image_ids[i * len(image_ids) // len(kps)], "category_id": 1, "score": 0.5,
                "keypoints": [None if np.isnan(v) else float(v) for v in kp.ravel()]} for i, kp in enumerate(kps)]
    (tmp_path / "kp.json").write_text(json.dumps(records))
    a = read_coco_predictions(tmp_path / "kp.json", like=truth).annotations
    assert a.keypoints is not None and a.box is not None
    np.testing.assert_array_equal(a.keypoints, kps)
    for r, kp in enumerate(kps):
        x, y = kp[:, 0][~np.isnan(kp[:, 0])], kp[:, 1][~np.isnan(kp[:, 1])]
        want = [x.min(), y.min(), x.max(), y.max()] if x.size else [np.nan] * 4
        np.testing.assert_array_equal(a.box[r], want, err_msg=f"row {r}")


@pytest.mark.parametrize("native", ["0", "1"])
def test_infinite_scores_and_keypoints_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    native: str) -> None:
    """An infinite score is kept but reported (it is not written back); keypoints with an infinite number are
    reported and not imported (their box would be infinite: the Dataset refused it)."""
    monkeypatch.setenv("MASLOW_NATIVE", native)
    truth = read_coco(TRUTH)
    recs = [{"image_id": 7, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5},
            {"image_id": 7, "category_id": 1, "bbox": [1, 2, 3, 4], "score": float("inf")},
            {"image_id": 9, "category_id": 1, "score": 0.4, "keypoints": [1, 2, 1, float("inf"), 3, 1, 4, 5, 1]}]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(recs))  # Infinity, as Python's json writes it
    pred, report = parse(path, like=truth)
    (score,) = report.of_type("coco_bad_score")
    assert score.record == "[1]" and score.field == "score" and "1 predictions" in score.message
    (kp,) = report.of_type("coco_bad_keypoints")
    assert kp.record == "[2]" and kp.field == "keypoints"
    a = pred.annotations
    assert pred.n_annotations == 3 and a.keypoints is not None and a.box is not None
    assert np.isinf(a.score[1]) and np.isnan(a.keypoints[2]).all() and np.isnan(a.box[2]).all()


@pytest.mark.parametrize("native", ["0", "1"])
def test_strings_and_booleans_are_not_read_as_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      native: str) -> None:
    monkeypatch.setenv("MASLOW_NATIVE", native)
    truth = read_coco(TRUTH)
    img, cat = int(truth.images.extra["coco_id"][0]), int(truth.schema.classes[0].id)
    recs = [{"image_id": img, "category_id": cat, "bbox": [1, 2, 3, 4], "score": "0.5"},
            {"image_id": img, "category_id": cat, "bbox": ["1", "2", "3", "4"], "score": 0.5},
            {"image_id": img, "category_id": True, "bbox": [1, 2, 3, 4], "score": 0.5},
            {"image_id": img, "category_id": cat, "bbox": [1, 2, 3, 4], "score": True}]
    _, report = parse(dump(tmp_path / "r.json", recs), like=truth)
    found = {(i.type, (i.record or "").removeprefix("annotations"), i.field) for i in report}
    assert ("coco_bad_score", "[0]", "score") in found and ("coco_bad_score", "[3]", "score") in found
    assert ("coco_bad_bbox", "[1]", "bbox") in found and ("coco_unknown_category", "[2]", "category_id") in found
    gt = json.loads(TRUTH.read_text())
    gt["annotations"][0]["area"] = "12"
    report = io.import_dataset(dump(tmp_path / "gt.json", gt), "coco", check_files=False).report
    assert ("coco_bad_area", "annotations[0]") in {(i.type, i.record.split(" ")[0]) for i in report}
