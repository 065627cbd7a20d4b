"""``lvis_map`` against lvis-api 0.5.3's ``LVISEval`` itself, bit for bit (the 13 stats and the full precision and
recall arrays), on generated LVIS-like files read by maslow's COCO readers: box and mask cases with the per-image
cap crossed (score ties at the cap), unverified and not-exhaustive classes, crowd flags (which lvis-api does not
use), ``ignore`` keys, a truth object of id 0, empty images, classes without truth and an empty frequency group.

lvis-api is not a maslow dependency (it needs opencv at import and ``np.float``, gone since numpy 1.24, which the
reference run puts back for its duration): these tests run only where ``import lvis`` works, e.g. after
``pip install --no-deps --target /tmp/lvis lvis==0.5.3 opencv-python-headless`` with ``PYTHONPATH=/tmp/lvis``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.io import coco, coco_results
from maslow.metrics.lvis import LvisResult, lvis_map
from tests.metrics.test_lvis import make_case

lvis = pytest.importorskip("lvis")


def run_lvis_api(gt_path: Path, dt_path: Path, iou_type: str, max_dets: int) -> tuple[dict[str, float], Any]:
    """lvis-api on the files: its results, and its ``eval`` dict."""
    had = "float" in np.__dict__
    if not had:
        np.float = float  # type: ignore[attr-defined]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gt = lvis.LVIS(str(gt_path))
            ev = lvis.LVISEval(gt, lvis.LVISResults(gt, str(dt_path), max_dets=max_dets), iou_type)
            ev.run()
    finally:
        if not had:
            del np.float  # type: ignore[attr-defined]
    return {k: float(v) for k, v in ev.results.items()}, ev.eval


def run_maslow(gt_path: Path, dt_path: Path, gt: dict[str, Any], iou_type: str, **options: Any) -> LvisResult:
    truth, _ = coco.parse(gt_path)
    pred, _ = coco_results.parse(dt_path, like=truth)
    return lvis_map(truth, pred, iou_type=iou_type, frequency={c["name"]: c["frequency"] for c in gt["categories"]},
                    **options)


def assert_identical(r: LvisResult, stats: dict[str, float], ev: Any) -> None:
    assert list(r.lvis_keys) == list(stats)
    assert r.stats.tolist() == list(stats.values())
    assert r.precision.shape == ev["precision"].shape
    assert np.array_equal(r.precision, ev["precision"])
    assert np.array_equal(r.recall, ev["recall"])


def _write(tmp_path: Path, gt: dict[str, Any], results: list[dict[str, Any]]) -> tuple[Path, Path]:
    gt_path, dt_path = tmp_path / "gt.json", tmp_path / "dt.json"
    gt_path.write_text(json.dumps(gt))
    dt_path.write_text(json.dumps(results))
    return gt_path, dt_path


@pytest.mark.parametrize(("seed", "options", "max_dets"), [
    pytest.param(0, {}, 300, id="default-cap-not-reached"),
    pytest.param(1, {}, 20, id="cap-20"),
    pytest.param(2, {"score_decimals": 2}, 10, id="cap-10-fewer-ties"),
    pytest.param(3, {"crowd": 0.3}, 20, id="crowd-flags-unused"),
    pytest.param(4, {"ignore": 0.3}, 20, id="ignore-key"),
    pytest.param(5, {"id_zero": True}, 20, id="truth-id-0"),
    pytest.param(6, {"n_images": 60, "n_cats": 30, "dets": (0, 80)}, 50, id="larger"),
    pytest.param(9, {"freqs": ("c", "f")}, 20, id="no-rare-class"),
])
def test_bbox_equals_lvis_api(tmp_path: Path, seed: int, options: dict[str, Any], max_dets: int) -> None:
    gt, results = make_case(seed, **options)
    gt_path, dt_path = _write(tmp_path, gt, results)
    stats, ev = run_lvis_api(gt_path, dt_path, "bbox", max_dets)
    r = run_maslow(gt_path, dt_path, gt, "bbox", max_dets=max_dets)
    assert_identical(r, stats, ev)
    if max_dets < 40:  # the case crosses the cap
        assert r.n_capped > 0
    assert r.n_unverified > 0


def test_no_cap_equals_lvis_api_minus_one(tmp_path: Path) -> None:
    gt, results = make_case(7, dets=(30, 60))
    gt_path, dt_path = _write(tmp_path, gt, results)
    stats, ev = run_lvis_api(gt_path, dt_path, "bbox", -1)
    r = run_maslow(gt_path, dt_path, gt, "bbox", max_dets=None)
    assert r.stats.tolist() == list(stats.values())
    assert np.array_equal(r.precision, ev["precision"]) and np.array_equal(r.recall, ev["recall"])
    assert r.n_capped == 0


@pytest.mark.parametrize("with_bbox", [False, True], ids=["mask-area", "bbox-in-results"])
def test_segm_equals_lvis_api(tmp_path: Path, with_bbox: bool) -> None:
    from pycocotools import mask as mask_utils

    gt, results = make_case(8, segm=True, crowd=0.2, dets=(5, 30))
    if with_bbox:  # lvis-api then takes the box area (w * h) for the area ranges: pred_area="box"
        for r in results:
            r["bbox"] = [float(v) for v in mask_utils.toBbox(r["segmentation"])]
    gt_path, dt_path = _write(tmp_path, gt, results)
    stats, ev = run_lvis_api(gt_path, dt_path, "segm", 15)
    r = run_maslow(gt_path, dt_path, gt, "segm", max_dets=15, pred_area="box" if with_bbox else "geometry")
    assert_identical(r, stats, ev)
