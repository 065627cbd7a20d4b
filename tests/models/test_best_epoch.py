"""The best epoch is one number for the user: ``maslow train`` prints it counting from 1, and ``--json``'s top-level
``best_epoch`` is that number (it printed "best epoch 1" while the JSON only had ``history.best_epoch: 0``); the saved
history keeps 0-based indexes. A resumed run with nothing left to train says what would train on."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from maslow.cli.train import finished_line
from maslow.models.base import EpochResult, TrainHistory
from maslow.models.train import TrainResult
from tests.helpers import run_cli_streams as _run
from tests.models.tiny_data import write_tiny_classification


def _printed_and_json(tmp_path: Path, config: str) -> tuple[int, dict[str, Any]]:
    write_tiny_classification(tmp_path / "data", n_train=4, n_val=2)
    (tmp_path / "c.yaml").write_text(config + "data: data\nformat: imagefolder\nthreads: 1\ntracking: 'off'\n",
                                     encoding="utf-8")
    code, out, err = _run(["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "printed")])
    assert code == 0, out + err
    m = re.search(r"best epoch (\d+)", " ".join(out.split()))
    assert m is not None, out
    code, out, err = _run(["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "json"), "--json"])
    assert code == 0, out + err
    return int(m[1]), json.loads(out)


def test_embed_logreg_best_epoch_is_the_printed_one(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    printed, d = _printed_and_json(tmp_path, "model: embed-logreg\nbackbone: light\n")
    assert printed == d["best_epoch"] == 1
    assert d["history"]["best_epoch"] == 0 and [e["epoch"] for e in d["history"]["epochs"]] == [0]  # indexes


def test_torch_best_epoch_is_the_printed_one(tmp_path: Path) -> None:
    pytest.importorskip("torchvision")
    printed, d = _printed_and_json(tmp_path, "model: torchvision-classifier\nbackbone: mobilenet_v3_small\n"
                                             "pretrained: 'no'\nepochs: 2\nimage_size: 32\npatience: 0\n")
    h = d["history"]
    assert isinstance(h, dict) and [e["epoch"] for e in h["epochs"]] == [0, 1]
    assert printed == d["best_epoch"] == h["best_epoch"] + 1
    saved = json.loads((tmp_path / "json" / "model.json").read_text())["history"]
    assert saved["best_epoch"] == h["best_epoch"]  # model.json keeps the 0-based index


def _result(best: int, done: int, why: str | None) -> TrainResult:
    epochs = tuple(EpochResult(i, 1.0, {"accuracy": 0.5}, 0.1) for i in range(done))
    model = SimpleNamespace(history=TrainHistory(epochs, "accuracy", best, done < 10, "w"),
                            config=SimpleNamespace(model="torchvision-classifier", epochs=10))
    return TrainResult(model, Path("runs/m"), "accuracy", already_finished=why)  # type: ignore[arg-type]


def test_best_epoch_without_validation_is_null() -> None:
    assert _result(-1, 2, None).best_epoch is None and _result(-1, 2, None).to_dict()["best_epoch"] is None
    assert _result(3, 5, None).to_dict()["best_epoch"] == 4


@pytest.mark.parametrize(("best", "done", "why", "hint"), [
    pytest.param(0, 4, "stopped early after 4 of 10 epochs: accuracy was no better than epoch 1's for 3 epochs "
                 "(patience 3)", "(--set patience=0, or a patience above 3, trains on)", id="patience"),
    pytest.param(1, 10, "trained 10 of 10 epochs", "(--set epochs=N with N > 10 trains on)", id="epochs"),
    pytest.param(1, 3, "params.cpu_budget_s (5 s of CPU) ran out after 3 of 10 epochs", "", id="budget"),
])
def test_nothing_to_resume_says_what_trains_on(best: int, done: int, why: str, hint: str) -> None:
    line = finished_line(_result(best, done, why))
    assert line == f"{Path('runs/m')}: finished ({why}); nothing to resume" + (f" {hint}" if hint else "")
