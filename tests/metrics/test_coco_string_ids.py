"""COCO evaluation of files whose image ids are strings, against pycocotools 2.0.11 on the same files.

pycocotools keys its images by id whatever their type and evaluates them in ``sorted(imgIds)`` order, which for
strings is lexicographic ("10" before "9"); that order breaks score ties across images, so the stats depend on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow import io
from maslow.metrics import coco_map
from tests.helpers import run_cli
from tests.metrics.cocodata import assert_same, pycoco, random_case


def _as_strings(gt: dict[str, Any], results: list[dict[str, Any]], style: str
                ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The case with its image ids as strings: their decimal text ("digits": sorted as strings, not as numbers) or
    names whose order is unrelated to the integers' ("names")."""
    def new(i: int) -> str:
        return str(i) if style == "digits" else f"img_{(i * 37) % 101:03d}"

    gt, results = json.loads(json.dumps(gt)), json.loads(json.dumps(results))
    for im in gt["images"]:
        im["id"] = new(im["id"])
    for rec in gt["annotations"] + results:
        rec["image_id"] = new(rec["image_id"])
    return gt, results


def _files(tmp_path: Path, gt: dict[str, Any], results: list[dict[str, Any]]) -> tuple[Path, Path]:
    gt_path, dt_path = tmp_path / "gt.json", tmp_path / "dt.json"
    gt_path.write_text(json.dumps(gt))
    dt_path.write_text(json.dumps(results))
    return gt_path, dt_path


@pytest.mark.parametrize("native", ["1", "0"], ids=["kernels", "numpy"])
@pytest.mark.parametrize("style", ["digits", "names"])
@pytest.mark.parametrize("seed", [0, 3, 9])
def test_string_ids_bit_identical_to_pycocotools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int,
                                                 style: str, native: str) -> None:
    gt_int, res_int = random_case(seed, n_images=15, tie_rate=0.8)  # many score ties across images
    gt, results = _as_strings(gt_int, res_int, style)
    ev = pycoco(gt, results)
    # the case depends on the image order: integer ids (numeric order) give other stats
    assert not np.array_equal(np.asarray(pycoco(gt_int, res_int).stats), np.asarray(ev.stats))
    monkeypatch.setenv("MASLOW_NATIVE", native)
    gt_path, dt_path = _files(tmp_path, gt, results)
    truth = io.read_coco(gt_path)
    assert truth.images.extra["coco_id"].tolist() == [im["id"] for im in gt["images"]]
    pred = io.read_coco_predictions(dt_path, like=truth)
    assert pred.n_annotations == len(results)
    assert_same(ev, coco_map(truth, pred))


def test_eval_command_on_string_ids_gives_pycocotools_stats(tmp_path: Path) -> None:
    gt, results = _as_strings(*random_case(9, n_images=15, tie_rate=0.8), "digits")
    gt_path, dt_path = _files(tmp_path, gt, results)
    out = tmp_path / "eval.json"
    code, text = run_cli(["eval", "--gt", str(gt_path), "--pred", str(dt_path), "--json", str(out)])
    assert code == 0, text
    stats = json.loads(out.read_text())["map"]["stats"]
    want = [None if v == -1 else v for v in pycoco(gt, results).stats.tolist()]
    assert list(stats.values()) == want


def test_results_written_with_string_ids_evaluate_the_same(tmp_path: Path) -> None:
    """write_coco_results writes the truth's string ids back: pycocotools' loadRes takes the file, same stats."""
    gt, results = _as_strings(*random_case(3, n_images=15, tie_rate=0.8), "names")
    gt_path, dt_path = _files(tmp_path, gt, results)
    truth = io.read_coco(gt_path)
    written = tmp_path / "written.json"
    io.write_coco_results(io.read_coco_predictions(dt_path, like=truth), written)
    again = json.loads(written.read_text())
    assert {r["image_id"] for r in again} <= {im["id"] for im in gt["images"]}
    np.testing.assert_array_equal(pycoco(gt, again).stats, pycoco(gt, results).stats)
