"""``maslow eval --protocol openimages`` end to end: Open Images CSVs read (``--from openimages``, detections as a CSV
or a Kaggle submission), the hierarchy of MIDs resolved through the classes' MIDs the reader kept, the JSON equal to
``oid_map`` on the same inputs, and the options refused where they don't belong (exit code 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from maslow.io.openimages import read_openimages
from maslow.io.openimages_results import read_openimages_results
from maslow.metrics.openimages import oid_map, read_hierarchy
from tests.helpers import flat_text, run_cli

DATA = Path(__file__).resolve().parents[1] / "data" / "openimages"


@pytest.fixture()
def oid(tmp_path: Path) -> Path:
    """The fixture folder, and a hierarchy of MIDs in which Bicycle (/m/0199g) sits under Car (/m/0k4j)."""
    root = tmp_path / "oid"
    shutil.copytree(DATA, root)
    tree = {"LabelName": "/m/0bl9f", "Subcategory": [
        {"LabelName": "/m/0cmf2"}, {"LabelName": "/m/01g317"},
        {"LabelName": "/m/0k4j", "Subcategory": [{"LabelName": "/m/0199g"}]}]}
    (root / "hierarchy.json").write_text(json.dumps(tree))
    return root


def _eval(oid: Path, pred: str, *extra: str) -> tuple[int, str, dict]:
    out = oid / "eval.json"
    code, text = run_cli(["eval", "--gt", str(oid), "--from", "openimages", "--pred", str(oid / pred),
                          "--pred-format", "openimages-results", "--protocol", "openimages", "--json", str(out),
                          *extra])
    return code, text, json.loads(out.read_text()) if out.exists() else {}


@pytest.mark.filterwarnings("ignore:.*no images folder.*")  # the fixture has no images: boxes stay fractions
@pytest.mark.parametrize("pred", ["predictions.csv", "submission.csv"])
def test_eval_openimages_equals_the_python_api(oid: Path, pred: str) -> None:
    code, text, doc = _eval(oid, pred, "--hierarchy", str(oid / "hierarchy.json"))
    assert code == 0, text
    truth = read_openimages(oid)
    preds = read_openimages_results(oid / pred, like=truth)
    mids = {mid: name for name, mid in truth.info["openimages"]["mids"].items()}
    want = oid_map(truth, preds, hierarchy=read_hierarchy(oid / "hierarchy.json", truth.schema, mids)).to_dict()
    got = doc["openimages"]
    assert got["map"] == pytest.approx(want["map"], abs=0) and got["per_class"] == want["per_class"]
    assert got["hierarchy"] and got["image_labels"]
    # the hierarchy counts the bicycle for Car too: Car has objects only through it (the truth has no car box)
    car = next(c for c in got["per_class"] if c["class"] == "Car")
    assert car["n_pos"] == next(c for c in got["per_class"] if c["class"] == "Bicycle")["n_pos"] > 0
    code, text, plain = _eval(oid, pred)
    assert code == 0, text
    assert next(c for c in plain["openimages"]["per_class"] if c["class"] == "Car")["n_pos"] == 0
    assert not plain["openimages"]["hierarchy"]


def test_eval_openimages_refuses_what_does_not_belong(oid: Path) -> None:
    code, text = run_cli(["eval", "--gt", str(oid), "--from", "openimages", "--pred", str(oid / "predictions.csv"),
                          "--pred-format", "openimages-results", "--hierarchy", str(oid / "hierarchy.json")])
    assert code == 2 and "--hierarchy goes with --protocol openimages, not coco" in flat_text(text), text
    code, text, _ = _eval(oid, "predictions.csv", "--iou-type", "segm")
    assert code == 2 and "--protocol openimages evaluates --iou-type bbox" in flat_text(text), text
    code, text, _ = _eval(oid, "predictions.csv", "--errors")
    assert code == 2 and "--errors goes with --protocol coco, not openimages" in flat_text(text), text
    bad = oid / "bad.json"
    bad.write_text(json.dumps({"LabelName": "/m/0bl9f", "Subcategory": [{"LabelName": "/m/0xxxx"}]}))
    code, text, doc = _eval(oid, "predictions.csv", "--hierarchy", str(bad))
    assert code == 2 and "bad.json" in flat_text(text) and "/m/0xxxx" in flat_text(text), text
    assert not doc  # nothing written


@pytest.mark.filterwarnings("ignore:.*no images folder.*")
def test_eval_openimages_leaves_inverted_detections_out_and_says_how_many(oid: Path) -> None:
    # the airplane's own box with XMin > XMax: TF's challenge evaluator drops it (AP 0), swapped it would be a TP
    (oid / "inverted.csv").write_text("ImageID,LabelName,Score,XMin,XMax,YMin,YMax\n"
                                      "0001eeaf4aed83f9,/m/0cmf2,0.9,0.9642005,0.022673031,0.07103825,0.80054647\n"
                                      "0001eeaf4aed83f9,/m/0cmf2,0.5,0.9,0.95,0.9,0.95\n")
    code, text, doc = _eval(oid, "inverted.csv")
    assert code == 0, text
    plane = next(c for c in doc["openimages"]["per_class"] if c["class"] == "Airplane")
    assert plane["ap"] == 0.0 and plane["n_tp"] == 0 and plane["n_fp"] == 1, plane
    assert doc["n_pred"] == 1 and "left out of the evaluation" in flat_text(text), text
    (issue,) = [i for i in doc["import_issues"]["pred"]["issues"] if i["type"] == "openimages_inverted_box"]
    assert (issue["record"], issue["field"], issue["severity"]) == ("line 2", "XMin", "error"), issue
    assert "not imported: 1 of 2 detections" in issue["message"]
    assert "openimages_inverted_" in text and "imported: 1 of 2" in text  # the table on stderr says it too
    (oid / "all_inverted.csv").write_text("ImageID,LabelName,Score,XMin,XMax,YMin,YMax\n"
                                          "0001eeaf4aed83f9,/m/0cmf2,0.9,0.9,0.1,0.1,0.8\n")
    (oid / "eval.json").unlink()
    code, text, doc = _eval(oid, "all_inverted.csv")  # nothing left: refused (exit 2), no JSON
    assert code == 2 and "no prediction is left to evaluate" in flat_text(text) and not doc, text
