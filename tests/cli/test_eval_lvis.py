"""`maslow eval --protocol lvis`: the --json "lvis" section is the library's on an LVIS-like file (the categories'
frequency read from the file), and the options of the COCO protocol are refused (exit 2)."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest

from maslow.errors import MaslowWarning
from maslow.io.coco import read_coco
from maslow.io.coco_results import read_coco_predictions
from maslow.metrics import lvis_map
from tests.helpers import flat_text, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from lvis_bench import make_lvis  # the benchmark's seeded LVIS-like generator


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("eval-lvis")
    make_lvis(40, d / "gt.json", d / "dt.json", seed=3, n_cats=30)
    return {"dir": d, "gt": d / "gt.json", "pred": d / "dt.json"}


def test_lvis_json_and_table_equal_the_library(files: dict[str, Path]) -> None:
    out = files["dir"] / "out.json"
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--protocol", "lvis",
                          "--json", str(out)])
    assert code == 0, text
    truth = read_coco(files["gt"])
    with warnings.catch_warnings():  # the generator's boxes may end past the image (as the CLI reports too)
        warnings.simplefilter("ignore", MaslowWarning)
        pred = read_coco_predictions(files["pred"], like=truth)
    ref = lvis_map(truth, pred)
    doc = json.loads(out.read_text())
    assert doc["protocol"] == "lvis" and doc["lvis"] == json.loads(json.dumps(ref.to_dict()))
    assert f"ap_rare AP 0.50:0.95 all rare {ref.ap_rare:.3f}" in flat_text(text)


@pytest.mark.parametrize("extra", [["--errors"], ["--calibration"], ["--slice-by", "split"], ["--cost-fn", "5"],
                                   ["--iou-type", "keypoints"]])
def test_coco_only_options_are_refused(files: dict[str, Path], extra: list[str]) -> None:
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--protocol", "lvis",
                          *extra])
    assert code == 2 and "lvis" in flat_text(text), text


def test_an_unknown_protocol_is_refused(files: dict[str, Path]) -> None:
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--protocol", "kitti"])
    assert code == 2 and "--protocol must be coco, lvis, voc, openimages or panoptic" in flat_text(text), text


@pytest.mark.parametrize(("key", "value", "says"), [
    ("neg_category_ids", None, "must be a list of category ids, got None (1 image)"),
    ("not_exhaustive_category_ids", ["a"], "category ids must be 64-bit integers, got 'a'"),
])
def test_a_bad_image_list_names_the_file_record(files: dict[str, Path], tmp_path: Path, key: str, value: object,
                                                says: str) -> None:
    doc = json.loads(files["gt"].read_text())
    doc["images"][2][key] = value
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(doc))
    code, text = run_cli(["eval", "--gt", str(gt), "--pred", str(files["pred"]), "--protocol", "lvis"])
    flat = flat_text(text)
    assert code == 2, text
    assert f"images[2], field '{key}'" in flat and says in flat, flat  # not "truth.images.extra[...] row 2"
