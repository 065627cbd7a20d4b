"""``coco_map(iou_type="obb")`` against hotcoco 1.3's ``COCOeval(gt, dt, "obb")`` (the one other oriented-box COCO
evaluator): the summary and the full precision, recall and scores arrays, cell for cell, on generated scenes with
crowd regions, stated areas, class-agnostic matching and other maxDets. hotcoco is in the ``bench`` extra; these
tests run only where it is installed. The datasets go to hotcoco as its ``obb`` field (``[cx, cy, w, h, angle]``),
written here from the same rectangles maslow evaluates."""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.obb import oriented_corners, xywhr_from_corners
from maslow.metrics import coco_map
from maslow.sample import oriented, oriented_predictions

hotcoco = pytest.importorskip("hotcoco")


def _records(ds: Dataset, *, pred: bool, area: bool = False) -> list[dict[str, Any]]:
    a = ds.annotations
    quads = oriented_corners(a, np.arange(len(a)))
    b = xywhr_from_corners(quads)
    out = []
    for r in range(len(a)):
        rec: dict[str, Any] = {"image_id": int(a.image[r]) + 1, "category_id": int(a.label[r]) + 1,
                               "obb": b[r].tolist()}
        if pred:
            assert a.score is not None
            rec["score"] = float(a.score[r])
        else:
            lo, hi = quads[r].min(axis=0), quads[r].max(axis=0)
            rec.update(id=r + 1, bbox=[*lo.tolist(), *(hi - lo).tolist()],
                       iscrowd=int(a.iscrowd[r]) if a.iscrowd is not None else 0)
            if area:
                rec["area"] = float(a.extra["area"][r])
        out.append(rec)
    return out


def _hotcoco(tmp: Path, truth: Dataset, pred: Dataset, *, area: bool, params: dict[str, Any]) -> Any:
    gt = {"images": [{"id": i + 1, "width": int(truth.images.width[i]), "height": int(truth.images.height[i]),
                      "file_name": str(truth.images.path[i])} for i in range(truth.n_images)],
          "categories": [{"id": j + 1, "name": n} for j, n in enumerate(truth.schema.names)],
          "annotations": _records(truth, pred=False, area=area)}
    (tmp / "gt.json").write_text(json.dumps(gt))
    (tmp / "dt.json").write_text(json.dumps(_records(pred, pred=True)))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # "oriented-box evaluation has no reference implementation"
        h_gt = hotcoco.COCO(str(tmp / "gt.json"))
        ev = hotcoco.COCOeval(h_gt, h_gt.load_res(str(tmp / "dt.json")), "obb")
        for k, v in params.items():
            setattr(ev.params, k, v)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


@pytest.mark.parametrize(("seed", "case"), [
    pytest.param(0, {}, id="plain"),
    pytest.param(1, {"crowd": True}, id="crowd"),
    pytest.param(2, {"area": True}, id="stated-area"),
    pytest.param(3, {"use_cats": False}, id="class-agnostic"),
    pytest.param(4, {"max_dets": [1, 5, 8]}, id="max-dets"),
    pytest.param(5, {"loose": True}, id="loose-detector"),
])
def test_equals_hotcoco(tmp_path: Path, seed: int, case: dict[str, Any]) -> None:
    truth = oriented(60, seed=seed)
    pred = oriented_predictions(truth, seed=seed, **({"jitter": 0.15, "angle_jitter": 0.4, "fp_per_image": 4}
                                                      if case.get("loose") else {}))
    rng = np.random.default_rng(seed)
    a = truth.annotations
    if case.get("crowd"):  # some objects become crowd regions: matched by intersection over the prediction
        truth = truth.replace(annotations=a.with_columns(iscrowd=rng.random(len(a)) < 0.15))
    if case.get("area"):  # a stated area (as COCO's field) decides the area range, not the rectangle's
        truth = truth.replace(annotations=a.with_columns(extra={"area": rng.uniform(100, 12000, len(a))}))
    params: dict[str, Any] = {}
    options: dict[str, Any] = {}
    if "use_cats" in case:
        params["use_cats"] = options["use_cats"] = case["use_cats"]
    if "max_dets" in case:
        params["max_dets"] = options["max_dets"] = case["max_dets"]
    ev = _hotcoco(tmp_path, truth, pred, area=bool(case.get("area")), params=params)
    r = coco_map(truth, pred, iou_type="obb", **options)
    expected = np.asarray(ev.stats, np.float64)
    if "max_dets" in case:  # pycocotools' first stat reads maxDets=100, absent from this ladder: -1 (nan here);
        assert np.isnan(r.map_50_95)  # hotcoco reads the largest maxDets instead
        expected[0] = -1.0
    assert np.array_equal(np.nan_to_num(r.stats, nan=-1.0), expected), (r.stats, expected)
    for name in ("precision", "recall", "scores"):
        assert np.array_equal(getattr(r, name), np.asarray(ev.eval[name])), name
    assert 0.05 < r.map_50 < 0.99



@pytest.mark.parametrize(("carry", "rule"), [
    pytest.param("odd", "geometry", id="first-without-bbox"),
    pytest.param("all", "box", id="every-record-a-bbox"),
])
def test_pred_area_reproduces_hotcocos_load_res(tmp_path: Path, carry: str, rule: str) -> None:
    """hotcoco's ``loadRes`` types a results file by its first record, as pycocotools does: when that one carries a
    ``bbox``, every detection's area is its ``bbox`` ``w * h``, else its rectangle's. Detections whose ``bbox`` is
    1.6 times their rectangle's extent fall in other area ranges: ``pred_area="geometry"`` gives hotcoco's cells on a
    file whose first record has none (the others some), ``pred_area="box"`` on a file where every record has one."""
    from maslow.io.coco import read_coco
    from maslow.io.coco_results import read_coco_predictions

    truth = oriented(60, seed=7)
    pred = oriented_predictions(truth, seed=7)
    _hotcoco(tmp_path, truth, pred, area=False, params={})  # writes gt.json and dt.json
    records = json.loads((tmp_path / "dt.json").read_text())
    quads = oriented_corners(pred.annotations, np.arange(pred.n_annotations))
    for r, rec in enumerate(records):
        if carry == "all" or r % 2:
            lo, hi = quads[r].min(axis=0), quads[r].max(axis=0)
            rec["bbox"] = [*lo.tolist(), *((hi - lo) * 1.6).tolist()]
    (tmp_path / "dt.json").write_text(json.dumps(records))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        h_gt = hotcoco.COCO(str(tmp_path / "gt.json"))
        ev = hotcoco.COCOeval(h_gt, h_gt.load_res(str(tmp_path / "dt.json")), "obb")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # boxes beyond their image: a finding, kept as read
        m_truth = read_coco(tmp_path / "gt.json")
        m_pred = read_coco_predictions(tmp_path / "dt.json", like=m_truth)
    r = coco_map(m_truth, m_pred, iou_type="obb", pred_area=rule)
    assert np.array_equal(r.stats, np.asarray(ev.stats, np.float64)), (r.stats, ev.stats)
    for name in ("precision", "recall", "scores"):
        assert np.array_equal(getattr(r, name), np.asarray(ev.eval[name])), name
    other = coco_map(m_truth, m_pred, iou_type="obb", pred_area="box" if rule == "geometry" else "geometry")
    assert not np.array_equal(other.precision, r.precision)  # the areas matter on this file
