"""`maslow eval --calibration`: the --json "calibration" section is the library's, the table and the reliability
plot are written, and a label task refuses the flag (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maslow import io
from maslow.io.coco import read_coco
from maslow.io.coco_results import read_coco_predictions, write_coco_results
from maslow.metrics import detection_calibration
from maslow.sample import write_shapes
from tests.helpers import flat_text, run_cli
from tests.metrics.simulated import simulate


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("eval-calibration")
    io.write(write_shapes(d / "shapes", 24, seed=5), d / "shapes" / "annotations.json", "coco")
    truth = read_coco(d / "shapes" / "annotations.json")
    write_coco_results(simulate(truth, seed=5, p_swap=0.2, fp_per_image=1.0), d / "dets.json")
    return {"dir": d, "gt": d / "shapes" / "annotations.json", "pred": d / "dets.json"}


@pytest.mark.parametrize("thr", ["0.5", "0.75"])
def test_calibration_json_table_and_plot(files: dict[str, Path], thr: str) -> None:
    out, plots = files["dir"] / f"out-{thr}.json", files["dir"] / f"plots-{thr}"
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--calibration",
                          "--iou-threshold", thr, "--plot", str(plots), "--json", str(out)])
    assert code == 0, text
    truth = read_coco(files["gt"])
    ref = detection_calibration(truth, read_coco_predictions(files["pred"], like=truth), iou_threshold=float(thr))
    doc = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert doc["calibration"] == json.loads(json.dumps(ref.to_dict()))
    assert doc["calibration"]["n_predictions"] > 0
    assert f"ECE {ref.ece:.3f}" in flat_text(text)
    assert (plots / "reliability.png").stat().st_size > 0 and doc["plots"]["reliability"].endswith("reliability.png")


def test_without_the_flag_the_section_is_null(files: dict[str, Path]) -> None:
    out = files["dir"] / "plain.json"
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--json", str(out)])
    assert code == 0, text
    assert json.loads(out.read_text())["calibration"] is None


def test_a_classification_truth_refuses_calibration(tmp_path: Path) -> None:
    from maslow.core.dataset import Dataset
    from maslow.core.schema import LabelSchema
    from maslow.core.tables import Annotations, Images

    ds = Dataset(LabelSchema.from_names(["a", "b"], task="classification"),
                 Images(path=["0.png", "1.png"], width=[8, 8], height=[8, 8]),
                 Annotations(image=[0, 1], label=[0, 1]))
    io.write(ds, tmp_path / "labels.parquet", "parquet")
    code, text = run_cli(["eval", "--gt", str(tmp_path / "labels.parquet"), "--from", "parquet", "--pred",
                          str(tmp_path / "labels.parquet"), "--pred-format", "parquet", "--calibration"])
    assert code == 2 and "--calibration applies to detection" in flat_text(text), text
