"""`maslow eval` outputs: the --json numbers equal the library's, and --plot/--json paths that can't be written
exit 2 naming the path, with no plot or JSON half-written."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.io.coco import read_coco
from maslow.io.coco_results import read_coco_predictions
from maslow.metrics import coco_map, detection_confusion_matrix
from tests.helpers import first_class_emptied, run_cli


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Shapes truth whose first class has no truth objects left, and simulated predictions (some of that class)."""
    return first_class_emptied(tmp_path_factory.mktemp("eval-outputs"), 24, seed=5, p_swap=0.3)


def _strict(text: str) -> Any:
    def refuse(c: str) -> None:
        raise ValueError(f"{c} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _none_nan(x: float) -> float | None:
    return None if math.isnan(x) else x


@pytest.mark.parametrize("extra", [[], ["--iou-threshold", "0.6", "--score-threshold", "0.2"]], ids=["defaults", "opts"])
def test_eval_json_numbers_equal_the_library(files: dict[str, Path], extra: list[str]) -> None:
    out = files["dir"] / f"eval-{len(extra)}.json"
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--json", str(out), *extra])
    assert code == 0, text
    d = _strict(out.read_text())
    truth = read_coco(files["gt"])
    pred = read_coco_predictions(files["pred"], like=truth)
    ref = coco_map(truth, pred)
    assert np.isnan(ref.ap_per_class[0]).all()  # the class without truth objects: nulls, never NaN
    assert d["map"]["stats"] == {n: _none_nan(getattr(ref, n)) for n in ref.stat_names}
    assert list(d["map"]["stats"].values()) == [None if v == -1 else v for v in ref.stats.tolist()]
    assert d["map"]["ap_per_class"] == [[_none_nan(v) for v in row] for row in ref.ap_per_class.tolist()]
    a = truth.annotations
    assert a.iscrowd is not None
    n_truth = np.bincount(a.label[~a.iscrowd], minlength=len(truth.schema.names))
    for k, row in enumerate(d["per_class"]):
        assert row["class"] == ref.class_names[k] and row["n_truth"] == n_truth[ref.class_labels[k]]
        assert row["ap"] == _none_nan(float(np.mean(ref.ap_per_class[k])))
        assert row["ap_50"] == _none_nan(float(ref.ap_per_class[k, 0]))
        assert row["ap_75"] == _none_nan(float(ref.ap_per_class[k, 5]))
    iou = float(extra[1]) if extra else 0.5
    score = float(extra[3]) if extra else 0.5
    cm = detection_confusion_matrix(truth, pred, iou_threshold=iou, score_threshold=score)
    assert d["confusion_matrix"]["matrix"] == cm.matrix.tolist()
    assert d["confusion_matrix"]["labels"] == list(cm.labels)
    assert (d["confusion_matrix"]["iou_threshold"], d["confusion_matrix"]["score_threshold"]) == (iou, score)


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("plot", ["a-file", "a-file/plots"], ids=["file", "below-a-file"])
def test_plot_into_a_file_exits_2_naming_it(files: dict[str, Path], tmp_path: Path, plot: str) -> None:
    (tmp_path / "a-file").write_text("keep")
    out = tmp_path / "out.json"
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--plot",
                          str(tmp_path / plot), "--json", str(out)])
    assert code == 2, text
    assert str(tmp_path / "a-file") in text and "Traceback" not in text
    assert (tmp_path / "a-file").read_text() == "keep" and _left(tmp_path) == ["a-file"]


def test_a_folder_named_like_a_plot_leaves_nothing_half_written(files: dict[str, Path], tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    (plots / "confusion_matrix.png").mkdir(parents=True)
    out = tmp_path / "out.json"
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--plot", str(plots),
                          "--json", str(out)])
    assert code == 2, text
    assert "confusion_matrix.png" in text
    # used to write pr_curves.png and ap_per_class.png before failing on the third
    assert _left(tmp_path) == ["confusion_matrix.png", "plots"]


def test_an_unwritable_json_leaves_no_plots(files: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("keep")
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "pr_curves.png").write_bytes(b"older")
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--plot", str(plots),
                          "--json", str(tmp_path / "a-file" / "out.json")])
    assert code == 2, text
    assert str(tmp_path / "a-file") in text
    # used to write every plot (replacing the older one) before failing on the JSON
    assert _left(plots) == ["pr_curves.png"] and (plots / "pr_curves.png").read_bytes() == b"older"


def test_plots_and_json_are_written_together(files: dict[str, Path], tmp_path: Path) -> None:
    plots = tmp_path / "new" / "plots"
    out = tmp_path / "out.json"
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--plot", str(plots),
                          "--json", str(out)])
    assert code == 0, text
    d = _strict(out.read_text())
    assert d["plots"] == {k: str(plots / f"{k}.png") for k in ("pr_curves", "ap_per_class", "confusion_matrix")}
    assert _left(plots) == ["ap_per_class.png", "confusion_matrix.png", "pr_curves.png"]  # no temporary file
    for p in plots.iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
