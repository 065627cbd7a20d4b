"""``lvis_map`` against hotcoco 1.3's ``LVISeval`` (its lvis-api replacement), bit for bit, on generated LVIS-like
files as LVIS writes them: no ``iscrowd``, no ``ignore`` key, no annotation id 0. Each of those three makes hotcoco's
numbers depart from lvis-api's (seen on ``make_case``'s ``crowd``, ``ignore`` and ``id_zero`` cases), and
``lvis_map`` follows lvis-api there (``test_lvis_reference.py``). hotcoco is in the ``bench`` extra; these tests run
only where it is installed."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.io import coco, coco_results
from maslow.metrics.lvis import lvis_map
from tests.metrics.test_lvis import make_case

hotcoco = pytest.importorskip("hotcoco")


@pytest.mark.parametrize(("seed", "options", "max_dets"), [
    pytest.param(11, {}, 300, id="no-cap"),
    pytest.param(12, {}, 15, id="cap-15"),
    pytest.param(13, {"n_images": 50, "n_cats": 25, "dets": (0, 70)}, 40, id="larger"),
    pytest.param(14, {"segm": True, "dets": (5, 30)}, 15, id="segm"),
])
def test_equals_hotcoco(tmp_path: Path, seed: int, options: dict[str, Any], max_dets: int) -> None:
    gt, results = make_case(seed, **options)
    iou_type = "segm" if options.get("segm") else "bbox"
    gt_path, dt_path = tmp_path / "gt.json", tmp_path / "dt.json"
    gt_path.write_text(json.dumps(gt))
    dt_path.write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        h_gt = hotcoco.COCO(str(gt_path))
        ev = hotcoco.LVISeval(h_gt, hotcoco.LVISResults(h_gt, str(dt_path), max_dets=max_dets), iou_type)
        ev.run()
    expected = {k: float(v) for k, v in ev.get_results().items()}
    truth, _ = coco.parse(gt_path)
    pred, _ = coco_results.parse(dt_path, like=truth)
    r = lvis_map(truth, pred, iou_type=iou_type, max_dets=max_dets,
                 frequency={c["name"]: c["frequency"] for c in gt["categories"]})
    assert {k: expected[k] for k in r.lvis_keys} == dict(zip(r.lvis_keys, r.stats.tolist(), strict=True))
    precision, recall = np.asarray(ev.eval["precision"]), np.asarray(ev.eval["recall"])
    assert np.array_equal(r.precision, precision.reshape(r.precision.shape))  # hotcoco keeps a maxDets axis of 1
    assert np.array_equal(r.recall, recall.reshape(r.recall.shape))
    if max_dets < 40:
        assert r.n_capped > 0
