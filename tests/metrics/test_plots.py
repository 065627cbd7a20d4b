"""Plots: each writes a PNG atomically and returns its path; a missing matplotlib names the extra."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.errors import MissingDependencyError
from maslow.metrics import (
    coco_map,
    detection_confusion_matrix,
    plot_ap_per_class,
    plot_confusion_matrix,
    plot_pr_curves,
    plot_slices,
    slice_metrics,
)
from maslow.sample import shapes
from tests.metrics.cocodata import datasets, random_case
from tests.metrics.simulated import simulate


@pytest.fixture(scope="module")
def evaluated() -> tuple[object, ...]:
    truth = shapes(30, seed=0)
    pred = simulate(truth, seed=0)
    return (coco_map(truth, pred), detection_confusion_matrix(truth, pred, score_threshold=0.3),
            slice_metrics(truth, pred, by="sequence", n_boot=30, rng=0))


def _png(path: Path, min_size: tuple[int, int] = (300, 200)) -> tuple[int, int]:
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size[0] >= min_size[0] and im.size[1] >= min_size[1]
        return im.size


def test_every_plot_writes_a_png_and_leaves_no_temporary_file(evaluated: tuple[object, ...], tmp_path: Path) -> None:
    result, cm, sl = evaluated
    out = tmp_path / "plots"
    paths = [plot_pr_curves(result, out / "pr.png"), plot_ap_per_class(result, out / "ap.png"),  # type: ignore[arg-type]
             plot_confusion_matrix(cm, out / "cm.png"), plot_slices(sl, out / "slices.png")]  # type: ignore[arg-type]
    assert paths == [out / "pr.png", out / "ap.png", out / "cm.png", out / "slices.png"]
    for p in paths:
        _png(p)
    assert sorted(p.name for p in out.iterdir()) == ["ap.png", "cm.png", "pr.png", "slices.png"]


def test_a_plot_replaces_an_older_file(evaluated: tuple[object, ...], tmp_path: Path) -> None:
    _, cm, _ = evaluated
    target = tmp_path / "cm.png"
    target.write_bytes(b"old")
    plot_confusion_matrix(cm, target, normalize=False)  # type: ignore[arg-type]
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_many_classes_and_classes_without_truth(tmp_path: Path) -> None:
    gt, res = random_case(0, n_images=30, n_cats=24, max_gt=10)
    gt["annotations"] = [a for a in gt["annotations"] if a["category_id"] != gt["categories"][0]["id"]]
    truth, pred = datasets(gt, res)
    result = coco_map(truth, pred)
    assert np.isnan(result.ap_per_class[0]).all()  # a class without truth objects
    _png(plot_pr_curves(result, tmp_path / "pr.png"))
    w, h = _png(plot_ap_per_class(result, tmp_path / "ap.png"))
    assert h > w  # one bar per class: a tall chart
    _png(plot_confusion_matrix(detection_confusion_matrix(truth, pred, score_threshold=0.0), tmp_path / "cm.png"))


def test_curves_need_iou_050_for_the_left_panel(tmp_path: Path) -> None:
    truth = shapes(10, seed=1)
    result = coco_map(truth, simulate(truth, seed=1), iou_thresholds=[0.6, 0.7])
    _png(plot_pr_curves(result, tmp_path / "pr.png"))


def test_missing_matplotlib_names_the_reports_extra(evaluated: tuple[object, ...], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # what an absent package looks like to import
    with pytest.raises(MissingDependencyError, match=r"pip install 'maslow\[reports\]'"):
        plot_ap_per_class(evaluated[0], tmp_path / "ap.png")  # type: ignore[arg-type]
    assert not (tmp_path / "ap.png").exists()
