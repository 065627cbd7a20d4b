"""`maslow eval --iou-type boundary [--boundary-dilation R]`: the --json result is the library's Boundary IoU
evaluation (``coco_map(iou_type="boundary")``), the dilation reaches it and the operating points, slices,
calibration and confusion matrix computed with it, and the refusals exit 2 (a truth of boxes only,
--boundary-dilation with another type, --errors). `maslow compare --iou-type boundary` likewise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from maslow import io
from maslow.core.masks import decode, encode
from maslow.core.types import obj_array
from maslow.io.coco import read_coco
from maslow.io.coco_results import read_coco_predictions, write_coco_results
from maslow.metrics import coco_map
from maslow.metrics._iou import rles
from maslow.metrics.calibration import detection_calibration
from maslow.metrics.compare import compare_models
from maslow.metrics.operating import detection_confusion_matrix, operating_point
from maslow.metrics.slices import slice_metrics
from maslow.sample import write_shapes
from tests.helpers import flat_text, run_cli


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("eval-boundary")
    io.write(write_shapes(d / "shapes", 16, seed=2), d / "shapes" / "annotations.json", "coco")
    truth = read_coco(d / "shapes" / "annotations.json")
    # the truth's masks grown by a pixel, as scored predictions: a good mask IoU, a lower boundary IoU
    keep = np.flatnonzero(~truth.annotations.iscrowd)
    grown = [encode(binary_dilation(decode(m))) for m in rles(truth, keep, "truth")]
    pred = truth.select(~truth.annotations.iscrowd)
    pred = pred.replace(annotations=pred.annotations.with_columns(
        score=np.linspace(0.95, 0.3, len(keep)), mask=obj_array(grown), polygon=None))
    write_coco_results(pred, d / "masks.json")
    boxes_only = {"images": [{"id": 1, "width": 50, "height": 40, "file_name": "a.png"}],
                  "categories": [{"id": 1, "name": "a"}],
                  "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 10], "area": 100,
                                   "iscrowd": 0}]}
    (d / "boxes.json").write_text(json.dumps(boxes_only))
    (d / "box_dets.json").write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 10],
                                                  "score": 0.9}]))
    return {"dir": d, "gt": d / "shapes" / "annotations.json", "pred": d / "masks.json", "boxes": d / "boxes.json",
            "box_dets": d / "box_dets.json"}


def _eval(files: dict[str, Path], *extra: str) -> tuple[dict[str, Any], str]:
    out = files["dir"] / f"out-{'-'.join(extra)}.json"
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--json", str(out), *extra])
    assert code == 0, text
    return json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the JSON")), text


@pytest.mark.parametrize("dilation", [None, "0.05"], ids=["default", "0.05"])
def test_boundary_json_equals_the_library(files: dict[str, Path], dilation: str | None) -> None:
    extra = ["--iou-type", "boundary", *([] if dilation is None else ["--boundary-dilation", dilation])]
    d, text = _eval(files, *extra)
    truth = read_coco(files["gt"])
    ratio = 0.02 if dilation is None else float(dilation)
    ref = coco_map(truth, read_coco_predictions(files["pred"], like=truth), iou_type="boundary",
                   boundary_dilation=ratio)
    assert d["iou_type"] == "boundary" and d["boundary_dilation"] == ratio
    assert d["map"] == json.loads(json.dumps(ref.to_dict()))
    cm = detection_confusion_matrix(truth, read_coco_predictions(files["pred"], like=truth), iou_type="boundary",
                                    boundary_dilation=ratio)
    assert d["confusion_matrix"] == json.loads(json.dumps(cm.to_dict()))
    flat = flat_text(text)
    assert f"COCO boundary evaluation (Boundary IoU, dilation {ratio:g} of the image diagonal)" in flat
    assert f"map_50_95 AP 0.50:0.95 all 100 {ref.map_50_95:.3f}" in flat


def test_boundary_is_lower_than_segm_and_the_dilation_matters(files: dict[str, Path]) -> None:
    segm, _ = _eval(files, "--iou-type", "segm")
    narrow, _ = _eval(files, "--iou-type", "boundary")
    wide, _ = _eval(files, "--iou-type", "boundary", "--boundary-dilation", "1")
    assert "boundary_dilation" not in segm
    s, n, w = (x["map"]["stats"]["map_50_95"] for x in (segm, narrow, wide))
    assert n < s - 0.05  # a pixel more all round: the mask IoU barely moves, the boundary IoU does
    assert w == s  # a boundary as wide as the image: the mask itself


def test_a_truth_of_boxes_only_exits_2(files: dict[str, Path]) -> None:
    code, text = run_cli(["eval", "--gt", str(files["boxes"]), "--pred", str(files["box_dets"]), "--iou-type",
                          "boundary"])
    assert code == 2
    assert "truth.annotations row 0: iou_type 'boundary' needs a polygon or a mask, got neither" in flat_text(text)


@pytest.mark.parametrize(("extra", "message"), [
    pytest.param(["--boundary-dilation", "0.05"], "--boundary-dilation applies to --iou-type boundary, got bbox",
                 id="dilation-with-bbox"),
    pytest.param(["--iou-type", "boundary", "--boundary-dilation", "-1"], "--boundary-dilation must be a number >= 0",
                 id="negative"),
    pytest.param(["--iou-type", "boundary", "--errors"], "--errors (TIDE) applies to --iou-type bbox, segm and obb, got "
                 "boundary", id="errors"),
])
def test_refusals_exit_2(files: dict[str, Path], extra: list[str], message: str) -> None:
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), *extra])
    assert code == 2, text
    assert message in flat_text(text)


def test_plots_draw_the_confusion_matrix(files: dict[str, Path]) -> None:
    plots = files["dir"] / "plots"
    d, _ = _eval(files, "--iou-type", "boundary", "--plot", str(plots), "--calibration")
    assert sorted(p.name for p in plots.iterdir()) == ["ap_per_class.png", "confusion_matrix.png", "pr_curves.png",
                                                       "reliability.png"]
    assert set(d["plots"]) == {"pr_curves", "ap_per_class", "confusion_matrix", "reliability"}


@pytest.mark.parametrize("dilation", [None, "0.05"], ids=["default", "0.05"])
def test_analyses_json_equal_the_library(files: dict[str, Path], dilation: str | None) -> None:
    """--cost-fn, --target-recall, --slice-by and --calibration with boundary: the library's, at the dilation."""
    ratio = 0.02 if dilation is None else float(dilation)
    given = [] if dilation is None else ["--boundary-dilation", dilation]
    truth = read_coco(files["gt"])
    pred = read_coco_predictions(files["pred"], like=truth)
    d, _ = _eval(files, "--iou-type", "boundary", *given, "--cost-fn", "5", "--slice-by", "split", "--n-boot", "10",
                 "--calibration", "--iou-threshold", "0.75")
    kw: dict[str, Any] = {"iou_type": "boundary", "boundary_dilation": ratio}
    op = operating_point(truth, pred, cost_fn=5.0, iou_threshold=0.75, **kw)
    sl = slice_metrics(truth, pred, by="split", n_boot=10, rng=0, **kw)
    cal = detection_calibration(truth, pred, iou_threshold=0.75, **kw)
    for key, ref in (("operating_points", op), ("slices", sl), ("calibration", cal)):
        assert d[key] == json.loads(json.dumps(ref.to_dict())), key
    t, _ = _eval(files, "--iou-type", "boundary", *given, "--target-recall", "0.6", "--iou-threshold", "0.75")
    ref_t = operating_point(truth, pred, target_recall=0.6, iou_threshold=0.75, **kw)
    assert t["operating_points"] == json.loads(json.dumps(ref_t.to_dict()))
    # a boundary as wide as the image: segm's numbers
    if dilation is not None:
        wide, _ = _eval(files, "--iou-type", "boundary", "--boundary-dilation", "1", "--cost-fn", "5", "--slice-by",
                        "split", "--n-boot", "10", "--calibration", "--iou-threshold", "0.75")
        segm, _ = _eval(files, "--iou-type", "segm", "--cost-fn", "5", "--slice-by", "split", "--n-boot", "10",
                        "--calibration", "--iou-threshold", "0.75")
        for key in ("operating_points", "slices", "calibration", "confusion_matrix"):
            w, s = dict(wide[key]), dict(segm[key])
            w.pop("iou_type", None), s.pop("iou_type", None)
            assert w == s, key
        assert d["slices"]["overall"] < wide["slices"]["overall"]  # the pixel of growth shows at 0.05


def test_compare_boundary(files: dict[str, Path]) -> None:
    truth = read_coco(files["gt"])
    pred = read_coco_predictions(files["pred"], like=truth)
    # model B: the truth's own masks, the same scores
    exact = truth.select(~truth.annotations.iscrowd)
    exact = exact.replace(annotations=exact.annotations.with_columns(score=pred.annotations.score))
    write_coco_results(exact, files["dir"] / "exact.json")
    out = files["dir"] / "compare.json"
    code, text = run_cli(["compare", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--pred",
                          str(files["dir"] / "exact.json"), "--iou-type", "boundary", "--boundary-dilation", "0.05",
                          "--bootstrap", "20", "--json", str(out)])
    assert code == 0, text
    d = json.loads(out.read_text())
    b = read_coco_predictions(files["dir"] / "exact.json", like=truth)
    ref = compare_models(truth, pred, b, iou_type="boundary", n_bootstrap=20, seed=0, boundary_dilation=0.05)
    assert d["iou_type"] == "boundary" and d["boundary_dilation"] == 0.05
    assert d["comparison"] == json.loads(json.dumps(ref.to_dict()))
    cal = detection_calibration(truth, pred, iou_type="boundary", boundary_dilation=0.05)
    assert d["calibration"]["a"] == json.loads(json.dumps(cal.to_dict()))
    segm = compare_models(truth, pred, b, iou_type="segm", n_bootstrap=0)
    assert ref.stats_a[0] < segm.stats_a[0]  # the grown masks lose boundary IoU, not mask IoU


@pytest.mark.parametrize(("extra", "message"), [
    pytest.param(["--boundary-dilation", "0.05"], "--boundary-dilation applies to --iou-type boundary, got bbox",
                 id="dilation-with-bbox"),
    pytest.param(["--iou-type", "boundary", "--boundary-dilation", "-1"], "--boundary-dilation must be a number >= 0",
                 id="negative"),
])
def test_compare_refusals_exit_2(files: dict[str, Path], extra: list[str], message: str) -> None:
    code, text = run_cli(["compare", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--pred",
                          str(files["pred"]), *extra])
    assert code == 2, text
    assert message in flat_text(text)
