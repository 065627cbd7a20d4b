"""`maslow eval --protocol voc`: the --json "voc" section is the library's (`voc_map`) on COCO boxes and on DOTA
oriented boxes with difficult objects, and the options that don't go with the protocol are refused (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maslow.core.types import obj_array
from maslow.io import dota
from maslow.io.coco import read_coco, write_coco
from maslow.io.coco_results import read_coco_predictions, write_coco_results
from maslow.io.dota import write_dota
from maslow.io.dota_results import read_dota_results, write_dota_results
from maslow.io.voc import write_voc
from maslow.metrics import voc_map
from maslow.sample import oriented, oriented_predictions
from tests.helpers import flat_text, run_cli


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("eval-voc")
    truth = oriented(30, seed=4)
    a = truth.annotations
    difficult = np.random.default_rng(4).random(len(a)) < 0.15
    truth = truth.replace(annotations=a.with_columns(attributes={"difficult": obj_array(difficult.tolist())}))
    pred = oriented_predictions(truth, seed=4)
    write_coco(truth, d / "gt.json")
    write_coco_results(pred, d / "dt.json")
    write_dota(truth, d / "dota", images=False)
    write_dota_results(pred, d / "res")
    return {"dir": d, "gt": d / "gt.json", "pred": d / "dt.json", "dota": d / "dota", "res": d / "res"}


def _eval(args: list[str], out: Path) -> dict:
    code, text = run_cli(["eval", *args, "--json", str(out)])
    assert code == 0, text
    doc: dict = json.loads(out.read_text())
    return doc


def test_boxes_json_equals_the_library(files: dict[str, Path]) -> None:
    doc = _eval(["--gt", str(files["gt"]), "--pred", str(files["pred"]), "--protocol", "voc", "--voc-metric", "2007"],
                files["dir"] / "bbox.json")
    truth = read_coco(files["gt"])
    ref = voc_map(truth, read_coco_predictions(files["pred"], like=truth), metric="voc2007")
    assert doc["protocol"] == "voc" and doc["voc"] == json.loads(json.dumps(ref.to_dict()))
    assert 0.3 < ref.map < 1.0


def test_dota_oriented_boxes_with_difficult_objects(files: dict[str, Path]) -> None:
    """DOTA_devkit's task 1: labelTxt truth (difficult flags), Task1 results, 11-point AP at IoU 0.5 by polygon IoU."""
    doc = _eval(["--gt", str(files["dota"]), "--from", "dota", "--pred", str(files["res"]), "--pred-format",
                 "dota-results", "--protocol", "voc", "--iou-type", "obb", "--voc-metric", "2007", "--voc-strict"],
                files["dir"] / "obb.json")
    truth, _ = dota.parse(files["dota"])  # no image files: the missing_image findings are the CLI's notes
    ref = voc_map(truth, read_dota_results(files["res"], like=truth), iou_type="obb", metric="voc2007",
                  strict_iou=True)
    assert doc["voc"] == json.loads(json.dumps(ref.to_dict()))
    plain = voc_map(truth, read_dota_results(files["res"], like=truth), iou_type="obb", metric="voc2007",
                    strict_iou=True, difficult="no_such_attribute")
    assert ref.map != plain.map  # the difficult objects were ignored


@pytest.mark.parametrize(("extra", "match"), [
    pytest.param(["--protocol", "voc", "--errors"], "--errors goes with --protocol coco, not voc", id="errors"),
    pytest.param(["--protocol", "voc", "--pred-area", "box"], "--pred-area goes with --protocol coco", id="pred-area"),
    pytest.param(["--protocol", "voc", "--iou-type", "keypoints"], "--protocol voc evaluates --iou-type", id="kp"),
    pytest.param(["--protocol", "voc", "--iou-type", "obb", "--pixel-inclusive"], "--pixel-inclusive applies to",
                 id="pixel-inclusive"),
    pytest.param(["--protocol", "voc", "--voc-metric", "2012"], "--voc-metric must be 2007", id="metric"),
    pytest.param(["--voc-metric", "2007"], "--voc-metric goes with --protocol voc, not coco", id="without-voc"),
])
def test_refusals_exit_2(files: dict[str, Path], extra: list[str], match: str) -> None:
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), *extra])
    assert code == 2 and match in flat_text(text), text


def test_pixel_inclusive_on_voc_files_is_noted(files: dict[str, Path]) -> None:
    """The VOC reader already applies the devkit's + 1; asking for it again on VOC files measures boxes 1 px too
    large (on both sides alike, so no error): the note says so, and only there."""
    truth = read_coco(files["gt"])
    write_voc(truth, files["dir"] / "voc", images=False)
    gt = ["--gt", str(files["dir"] / "voc"), "--from", "voc", "--pred", str(files["pred"]), "--protocol", "voc"]
    for flag, noted in ((["--pixel-inclusive"], True), ([], False)):
        doc = _eval([*gt, *flag], files["dir"] / "voc.json")
        assert any("adds the devkit's + 1 a second time" in n for n in doc["notes"]) == noted
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--protocol", "voc",
                          "--pixel-inclusive"])
    assert code == 0 and "a second time" not in flat_text(text)  # COCO truth: inclusive boxes may be meant
