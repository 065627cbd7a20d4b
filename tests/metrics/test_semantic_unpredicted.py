"""Semantic segmentation: truth pixels the prediction leaves without a class (a missing prediction map) are counted
in ``n_unpredicted_per_class``, and that count reaches ``to_dict()`` (``--json``), ``to_pandas()``, the printed
table and a note of ``maslow eval``, which agrees with ``maslow compare`` on which images lack a map."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from maslow import io
from maslow.metrics import semantic_scores
from tests.cli.test_compare_cli_labels import _maps
from tests.helpers import run_cli_streams

NAMES = ["sky", "road", "car"]


@pytest.fixture(scope="module")
def sem(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("unpredicted")
    rng = np.random.default_rng(3)
    truth = [np.repeat(np.repeat(rng.integers(0, 3, (4, 5)), 4, 0), 4, 1) for _ in range(6)]
    gt = _maps(d / "gt", truth, NAMES, True)
    pred = _maps(d / "pred", truth, NAMES, False)  # a perfect model ...
    (pred / "f_02.png").unlink()  # ... whose map of one image is missing
    return {"truth": truth, "gt": gt, "pred": pred}


def test_unpredicted_pixels_are_counted_per_class_and_exported(sem: dict[str, Any]) -> None:
    truth = io.read_masks(sem["gt"])
    pred = truth.select(truth.annotations.image != 2)  # no prediction on image 2
    r = semantic_scores(truth, pred)
    expected = np.bincount(sem["truth"][2].ravel(), minlength=3)
    assert r.n_unpredicted_per_class.tolist() == expected.tolist()
    d = r.to_dict()
    assert d["n_unpredicted"] == int(expected.sum()) and d["n_unpredicted_per_class"] == expected.tolist()
    assert json.loads(json.dumps(d))["n_unpredicted_per_class"] == expected.tolist()  # JSON-safe ints
    assert r.to_pandas()["unpredicted_pixels"].tolist() == expected.tolist()
    # nothing missing: zeros, still exported
    full = semantic_scores(truth, truth).to_dict()
    assert full["n_unpredicted"] == 0 and full["n_unpredicted_per_class"] == [0, 0, 0]


def test_eval_says_which_truth_images_lack_a_map_and_exports_the_count(sem: dict[str, Any]) -> None:
    args = ["eval", "--gt", str(sem["gt"]), "--from", "masks", "--pred", str(sem["pred"]), "--pred-format", "masks"]
    code, out, err = run_cli_streams([*args, "--json", "-"])
    assert code == 0, err
    d = json.loads(out)
    expected = np.bincount(sem["truth"][2].ravel(), minlength=3).tolist()
    assert d["result"]["n_unpredicted_per_class"] == expected and d["result"]["n_unpredicted"] == sum(expected)
    note = "1 of 6 truth images have no prediction map (first: 'f_02.png')"
    assert any(note in n for n in d["notes"]) and note in " ".join(err.split())  # on stderr, not hidden
    assert d["summary"]["miou"] < 1.0
    code, out, err = run_cli_streams(args)  # the table: a column and a line, since some pixels are unpredicted
    assert code == 0
    assert "unpredicted" in out and f"{sum(expected)} truth pixels have no predicted class" in " ".join(out.split())
    # compare finds the same image missing (and refuses: both models must be evaluated on every image)
    code, out, err = run_cli_streams(["compare", "--gt", str(sem["gt"]), "--from", "masks", "--pred", str(sem["pred"]),
                                      "--pred", str(sem["gt"]), "--pred-format", "masks", "--bootstrap", "0"])
    text = " ".join(err.split())
    assert code == 2 and "image 'f_02.png'" in text and "1 of 6 truth images lack one" in text


def test_eval_with_every_map_prints_no_note(sem: dict[str, Any]) -> None:
    code, out, err = run_cli_streams(["eval", "--gt", str(sem["gt"]), "--from", "masks", "--pred", str(sem["gt"]),
                                      "--pred-format", "masks", "--json", "-"])
    assert code == 0, err
    d = json.loads(out)
    assert d["notes"] == [] and d["result"]["n_unpredicted"] == 0 and d["summary"]["miou"] == 1.0
