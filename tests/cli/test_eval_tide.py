"""`maslow eval --errors`: the TIDE table, the --json "tide" section (the library's numbers), the plot, and the
refusals (keypoints, label tasks, an IoU threshold below TIDE's background IoU)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.io.coco import read_coco
from maslow.io.coco_results import read_coco_predictions, write_coco_results
from maslow.metrics import tide_errors
from maslow.sample import write_shapes
from tests.helpers import flat_text, run_cli, run_cli_streams
from tests.metrics.simulated import simulate


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("eval-tide")
    io.write(write_shapes(d / "shapes", 30, seed=4), d / "shapes" / "annotations.json", "coco")
    truth = read_coco(d / "shapes" / "annotations.json")
    write_coco_results(simulate(truth, seed=4, p_swap=0.2, fp_per_image=1.0), d / "dets.json")
    a = truth.annotations  # the truth's masks as scored predictions: a segm evaluation
    perfect = truth.replace(annotations=a.with_columns(score=np.linspace(0.99, 0.5, len(a)))).select(~a.iscrowd)
    write_coco_results(perfect, d / "masks.json")
    return {"dir": d, "gt": d / "shapes" / "annotations.json", "pred": d / "dets.json", "masks": d / "masks.json"}


def _eval(files: dict[str, Path], *extra: str, pred: str = "pred") -> tuple[dict[str, Any], str]:
    out = files["dir"] / f"out-{len(extra)}-{pred}.json"
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files[pred]), "--json", str(out), *extra])
    assert code == 0, text
    return json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the JSON")), text


@pytest.mark.parametrize("thr", [None, "0.75"], ids=["default", "iou-0.75"])
def test_errors_json_and_table_equal_the_library(files: dict[str, Path], thr: str | None) -> None:
    extra = ["--errors"] if thr is None else ["--errors", "--iou-threshold", thr]
    d, text = _eval(files, *extra)
    truth = read_coco(files["gt"])
    ref = tide_errors(truth, read_coco_predictions(files["pred"], like=truth), pos_thr=float(thr or 0.5))
    assert d["tide"] == json.loads(json.dumps(ref.to_dict()))
    assert d["tide"]["pos_thr"] == float(thr or 0.5) and sum(d["tide"]["counts"].values()) > 0
    flat = flat_text(text)
    assert "TIDE errors" in flat
    for name in ("Cls", "Loc", "Both", "Dupe", "Bkg", "Miss"):  # each row: type, dAP, count
        assert f"{name} {ref.delta_ap[name]:.3f} {ref.counts[name]}" in flat, name


def test_without_errors_the_section_is_null(files: dict[str, Path]) -> None:
    d, text = _eval(files)
    assert d["tide"] is None and "TIDE" not in text


def test_errors_plot_and_stdout_json(files: dict[str, Path]) -> None:
    plots = files["dir"] / "plots"
    code, out, _ = run_cli_streams(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--errors",
                                    "--plot", str(plots), "--json", "-"])
    assert code == 0
    d = json.loads(out)
    assert d["plots"]["tide_errors"] == str(plots / "tide_errors.png") and d["tide"]["counts"]["Miss"] >= 0
    with Image.open(plots / "tide_errors.png") as im:
        assert im.format == "PNG" and im.size[0] > 300


def test_errors_on_masks(files: dict[str, Path]) -> None:
    d, _ = _eval(files, "--errors", "--iou-type", "segm", pred="masks")
    assert d["tide"]["iou_type"] == "segm" and d["tide"]["ap_base"] == 1.0
    assert sum(d["tide"]["counts"].values()) == 0


@pytest.mark.parametrize(("extra", "message"), [
    pytest.param(["--iou-type", "keypoints"], "--errors (TIDE) applies to --iou-type bbox, segm and obb", id="keypoints"),
    pytest.param(["--iou-threshold", "0.05"], "--iou-threshold at least TIDE's background IoU 0.1", id="low-iou"),
])
def test_errors_refused(files: dict[str, Path], extra: list[str], message: str) -> None:
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--errors", *extra])
    assert code == 2 and message in flat_text(text), text


def test_errors_refused_for_label_tasks(tmp_path: Path) -> None:
    n = 6
    truth = Dataset(LabelSchema.from_names(["x", "y"], task="classification"),
                    Images(path=np.array([f"{i}.jpg" for i in range(n)], object), width=[8] * n, height=[8] * n),
                    Annotations(image=np.arange(n), label=np.arange(n) % 2))
    io.write(truth, tmp_path / "labels.parquet", "parquet")
    code, text = run_cli(["eval", "--gt", str(tmp_path / "labels.parquet"), "--from", "parquet", "--pred",
                          str(tmp_path / "labels.parquet"), "--pred-format", "parquet", "--errors"])
    assert code == 2 and "--errors applies to detection and instance masks" in flat_text(text), text
