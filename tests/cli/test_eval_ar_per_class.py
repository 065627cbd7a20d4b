"""`maslow eval` shows AR per class beside AP per class (table and --json), equal to pycocotools' AR of each
class evaluated alone (what torchmetrics reports as ``mar_100_per_class``), and says which maxDets each stat reads."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import first_class_emptied, run_cli
from tests.metrics.cocodata import pycoco


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Shapes truth whose first class has no truth objects left (AR undefined), and simulated predictions."""
    return first_class_emptied(tmp_path_factory.mktemp("eval-ar"), 20, seed=7, p_swap=0.2)


def _pycoco_per_class(files: dict[str, Path]) -> tuple[dict[str, float], Any]:
    """class name -> pycocotools' AR of that class alone (``catIds = [id]``, ``stats[8]``; nan for -1), and the
    evaluation of all classes."""
    gt = json.loads(files["gt"].read_text())
    res = json.loads(files["pred"].read_text())
    ev = pycoco(gt, res)
    out = {}
    alone = pycoco(gt, res, summarize=False)
    for c in gt["categories"]:
        with contextlib.redirect_stdout(io.StringIO()):
            alone.params.catIds = [c["id"]]
            alone.evaluate()
            alone.accumulate()
            alone.summarize()
        out[c["name"]] = math.nan if alone.stats[8] == -1 else float(alone.stats[8])
    return out, ev


def test_eval_json_has_ar_per_class_and_the_maxdets_of_each_stat(files: dict[str, Path]) -> None:
    out = files["dir"] / "eval.json"
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--json", str(out)])
    assert code == 0, text
    d = json.loads(out.read_text())
    ar, ev = _pycoco_per_class(files)
    assert [c["class"] for c in d["per_class"]] == list(ar)
    for row in d["per_class"]:
        assert list(row) == ["class", "n_truth", "ap", "ap_50", "ap_75", "ar"]  # the AP keys as before, AR added
        expected = ar[row["class"]]
        assert (row["ar"] is None and math.isnan(expected)) or row["ar"] == expected
    assert math.isnan(ar[d["per_class"][0]["class"]])  # the class without truth objects: null
    recall = ev.eval["recall"][:, :, 0, -1]  # (T, K), area "all", maxDets 100
    assert d["map"]["ar_per_class"] == [[None if v == -1 else v for v in recall[:, k].tolist()]
                                        for k in range(recall.shape[1])]
    assert d["map"]["ar_by_max_dets"] == {"1": ev.stats[6], "10": ev.stats[7], "100": ev.stats[8]}
    assert d["map"]["stat_max_dets"] == {"map_50_95": 100, "map_50": 100, "map_75": 100, "map_small": 100,
                                         "map_medium": 100, "map_large": 100, "mar_1": 1, "mar_10": 10,
                                         "mar_100": 100, "mar_small": 100, "mar_medium": 100, "mar_large": 100}


def _table_rows(text: str, title: str) -> list[list[str]]:
    """The cells of the rows of the rich table titled ``title`` in ``text``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title)
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("└"):
            break
        if line.startswith(("│", "┃")):
            rows.append([c.strip() for c in line.strip("│┃").split("│" if line.startswith("│") else "┃")])
    return rows


def test_eval_table_shows_ar_beside_ap(files: dict[str, Path]) -> None:
    code, text = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"])])
    assert code == 0, text
    header, *rows = _table_rows(text, "AP and AR per class")
    assert header == ["class", "truth", "AP", "AP50", "AP75", "AR100"]
    ar, _ = _pycoco_per_class(files)
    assert {r[0]: r[-1] for r in rows} == {n: "-" if math.isnan(v) else f"{v:.3f}" for n, v in ar.items()}
    stats = {r[0]: r for r in _table_rows(text, "COCO bbox evaluation")[1:]}
    assert [stats[n][4] for n in ("map_50_95", "map_50", "mar_1", "mar_10", "mar_100")] == \
        ["100", "100", "1", "10", "100"]  # the maxDets column, as before
