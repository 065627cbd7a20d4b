"""`maslow eval` on COCO panoptic files: Panoptic Quality by default for coco-panoptic predictions, the --json
"panoptic" section is the library's, and the detection options are refused (exit 2)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from maslow.io.coco_panoptic import parse
from maslow.metrics import panoptic_quality
from tests.helpers import flat_text, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from panoptic_bench import make_case  # the benchmark's seeded COCO panoptic generator


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("eval-panoptic")
    make_case(d, 6, (160, 120), seed=2)
    return {"dir": d, "gt": d / "gt.json", "pred": d / "pred.json"}


def test_pq_json_equals_the_library(files: dict[str, Path]) -> None:
    out = files["dir"] / "pq.json"
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--from", "coco-panoptic", "--pred", str(files["pred"]),
                          "--pred-format", "coco-panoptic", "--json", str(out)])
    assert code == 0, text
    assert "Panoptic Quality" in text and "Things" in text and "Stuff" in text
    doc = json.loads(out.read_text())
    truth, _ = parse(files["gt"])
    pred, _ = parse(files["pred"], like=truth)
    ref = panoptic_quality(truth, pred)
    assert doc["protocol"] == "panoptic" and doc["panoptic"] == json.loads(json.dumps(ref.to_dict()))
    assert 0 < ref.pq < 0.95 and ref.to_dict()["tp"] > 0


@pytest.mark.parametrize(("extra", "match"), [
    pytest.param(["--errors"], "--errors does not apply to panoptic segmentation", id="errors"),
    pytest.param(["--id-offset", "1"], "--id-offset does not apply to panoptic", id="id-offset"),
    pytest.param(["--slice-by", "split"], "--slice-by does not apply to panoptic", id="slice-by"),
])
def test_detection_options_are_refused(files: dict[str, Path], extra: list[str], match: str) -> None:
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--from", "coco-panoptic", "--pred", str(files["pred"]),
                          "--pred-format", "coco-panoptic", *extra])
    assert code == 2 and match in flat_text(text), text


def test_a_missing_prediction_png_is_named(tmp_path: Path) -> None:
    # the reader reports the missing PNG (panoptic_missing_png, field file_name); the refusal names it, not only
    # "pred.annotations.mask row 0"
    make_case(tmp_path, 3, (80, 60), seed=3)
    doc = json.loads((tmp_path / "pred.json").read_text())
    png = doc["annotations"][0]["file_name"]
    folder = next(p for p in tmp_path.iterdir() if p.is_dir() and (p / png).is_file() and "pred" in p.name)
    (folder / png).unlink()
    code, text = run_cli(["eval", "--gt", str(tmp_path / "gt.json"), "--from", "coco-panoptic", "--pred",
                          str(tmp_path / "pred.json"), "--pred-format", "coco-panoptic"])
    flat = flat_text(text)
    assert code == 2, text
    assert "panoptic_missing_png" in flat and "field 'file_name'" in flat and png in flat
