"""Predictions that hold nothing, and a truth named by its workspace version: what `qa`, `eval`, `predict` and
`crossval` say (a detector trained too briefly writes an empty results file; qa then flagged every object)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maslow import io
from maslow.cli.models import _warn_if_empty
from maslow.io.coco import read_coco
from maslow.io.coco_results import write_coco_results
from maslow.sample import shapes, write_shapes
from tests.helpers import run_cli
from tests.metrics.simulated import simulate


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("empty")
    truth = write_shapes(d / "shapes", 12, seed=4)
    io.write(truth, d / "shapes" / "annotations.json", "coco")
    truth = read_coco(d / "shapes" / "annotations.json")
    write_coco_results(simulate(truth, seed=4), d / "dets.json")
    (d / "empty.json").write_text("[]")
    return {"dir": d, "gt": d / "shapes" / "annotations.json", "pred": d / "dets.json", "empty": d / "empty.json"}


def test_qa_refuses_predictions_that_hold_none(files: dict[str, Path]) -> None:
    out = files["dir"] / "ISSUES.json"
    code, text = run_cli(["qa", "--gt", str(files["gt"]), "--pred", str(files["empty"]), "--out", str(out)])
    assert code == 2, text
    assert "must hold predictions, got none on any of the 12 images" in " ".join(text.split())
    assert "empty.json" in text and not out.exists()
    code, text = run_cli(["qa", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--out", str(out)])
    assert code == 0, text
    assert out.exists()


def test_eval_says_there_are_no_predictions(files: dict[str, Path]) -> None:
    out = files["dir"] / "eval.json"
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["empty"]), "--json", str(out)])
    assert code == 0, text
    d = json.loads(out.read_text())
    assert d["n_pred"] == 0 and d["map"]["stats"]["map_50_95"] == 0
    assert any(n.startswith("no predictions on any image") for n in d["notes"])
    assert "no predictions on any image" in " ".join(text.split())
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--json", str(out)])
    assert code == 0 and json.loads(out.read_text())["notes"] == []


def test_predict_and_crossval_warn_when_a_detector_finds_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    truth = shapes(3, seed=1)
    empty = truth.select(np.zeros(truth.n_annotations, bool))
    _warn_if_empty(empty, "detection")
    assert "predicted no object on any of the 3 images" in " ".join(capsys.readouterr().err.split())
    for ds, task in ((truth, "detection"), (empty, "classification")):  # something found; a classifier
        _warn_if_empty(ds, task)
        assert capsys.readouterr().err == ""


def test_eval_and_qa_take_a_workspace_version_over_a_folder_of_the_same_name(
        files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the README's journey: `maslow sample shapes/`, imported as the dataset "shapes", then --gt shapes
    ws = tmp_path / "ws"
    ws.mkdir()
    monkeypatch.chdir(ws)
    (ws / "shapes").mkdir()
    assert run_cli(["init"])[0] == 0
    code, text = run_cli(["import", str(files["gt"]), "--from", "coco", "--name", "shapes"])
    assert code == 0, text
    code, text = run_cli(["eval", "--gt", "shapes", "--pred", str(files["pred"]), "--json", "e.json"])
    assert code == 0, text
    ref = json.loads(run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--json", "-"])[1])
    d = json.loads((ws / "e.json").read_text())
    assert d["map"]["stats"] == ref["map"]["stats"] and d["gt_format"] == "coco"
    code, text = run_cli(["qa", "--gt", "shapes", "--pred", str(files["pred"]), "--out", "I.json"])
    assert code == 0, text
    code, text = run_cli(["eval", "--gt", "nothing", "--pred", str(files["pred"])])
    assert code == 2 and "no such file or folder, nor a workspace version or dataset" in " ".join(text.split())


def test_eval_says_which_predictions_it_left_out(files: dict[str, Path]) -> None:
    dets = json.loads(files["pred"].read_text())
    dets[0]["image_id"], dets[1]["category_id"] = 10**9, 10**6  # an unknown image, an unknown class (twice)
    dets[2]["category_id"] = 10**6
    bad = files["dir"] / "bad.json"
    bad.write_text(json.dumps(dets))
    out = files["dir"] / "bad_eval.json"
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(bad), "--json", str(out)])
    assert code == 0, text
    d = json.loads(out.read_text())
    assert d["n_pred"] == len(dets) - 3
    assert d["notes"] == ["the predictions named by 2 import errors (listed below) are left out of the evaluation"]
    unknown = [i["message"] for i in d["import_issues"]["pred"]["issues"] if i["type"] == "coco_unknown_category"]
    assert len(unknown) == 1 and "2 predictions" in unknown[0]  # the count is in the error's own message
    assert "left out of the evaluation" in " ".join(text.split())
