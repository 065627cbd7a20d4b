"""``maslow eval --max-dets``: its help says which maxDets each number reads, and the output agrees (the help said
"AP and the area stats read its third value": AP reads 100 whatever the ladder, as pycocotools)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maslow import io
from maslow.cli._coco_params import MaxDets
from maslow.cli.main import app
from maslow.io.coco import read_coco
from maslow.io.coco_results import read_coco_predictions, write_coco_results
from maslow.metrics import coco_map
from maslow.sample import write_shapes
from tests.metrics.simulated import simulate


def _help() -> str:
    return " ".join(MaxDets.__metadata__[0].help.split())  # type: ignore[attr-defined]


def test_the_help_names_what_each_stat_reads() -> None:
    text = _help()
    assert "third value" in text and "map_50_95 reads maxDets 100 whatever the ladder" in text
    assert not re.search(r"\bAP and the area stats read its third value", text)
    assert "per-class table reads 100, else the ladder's largest value" in text


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("maxdets")
    truth = write_shapes(d / "shapes", 24, seed=3)
    io.write(truth, d / "shapes" / "annotations.json", "coco")
    truth = read_coco(d / "shapes" / "annotations.json")
    write_coco_results(simulate(truth, seed=3), d / "dets.json")
    return d / "shapes" / "annotations.json", d / "dets.json"


def test_the_output_reads_what_the_help_says(files: tuple[Path, Path], tmp_path: Path) -> None:
    gt, pred = files
    out = tmp_path / "out.json"
    res = CliRunner().invoke(app, ["eval", "--gt", str(gt), "--pred", str(pred), "--max-dets", "1,5,50",
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    reads = d["map"]["stat_max_dets"]
    assert reads["map_50_95"] == 100 and d["map"]["stats"]["map_50_95"] is None  # "-": the ladder has no 100
    assert reads["map_50"] == reads["map_75"] == reads["map_small"] == reads["mar_large"] == 50  # the third value
    assert (reads["mar_1"], reads["mar_10"], reads["mar_100"]) == (1, 5, 50)  # the first three
    truth = read_coco(gt)
    largest = coco_map(truth, read_coco_predictions(pred, like=truth), max_dets=(50,))
    assert [c["ap_50"] for c in d["per_class"]] == largest.ap_per_class[:, 0].tolist()  # the largest: 50
