"""``maslow qa --model``: says what the fold models started from and how good they are, as ``maslow crossval`` does
(the same code path: the same numbers, in the text and in ``--json``); no Python repr in what it prints. And
``maslow predict``: a class nothing was predicted as shows "-" for its mean score, not "nan". Before, qa --model
printed neither the weights nor the fold metrics, "No label issues found in Dataset(...)", and predict "nan"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.models import TrainConfig
from maslow.models.base import build_model
from tests.helpers import flat_text, run_cli_streams
from tests.models.tiny_data import colour_squares

pytest.importorskip("sklearn")


def _run(args: list[str]) -> tuple[int, str, str]:
    return run_cli_streams(args)


def _json(args: list[str]) -> Any:
    code, out, err = _run([*args, "--json"])
    assert code == 0, out + err
    return json.loads(out)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("qa_model")
    ds = colour_squares(d / "data", 24, seed=5)
    io.write(ds, d / "data" / "ds.parquet", "parquet")
    cfg = d / "cfg.yaml"
    cfg.write_text(f"data: data/ds.parquet\nformat: parquet\nbackbone: light\nparams:\n  cache_dir: {d / 'cache'}\n")
    return {"dir": d, "cfg": cfg, "data": d / "data" / "ds.parquet"}


def test_qa_model_reports_the_fold_models_as_crossval_does(files: dict[str, Path]) -> None:
    qa = ["qa", "--gt", str(files["data"]), "--from", "parquet", "--model", str(files["cfg"]), "--folds", "3",
          "--out", str(files["dir"] / "issues.json")]
    d = _json(qa)
    cv = _json(["crossval", str(files["cfg"]), "--folds", "3", "--out", str(files["dir"] / "oof.parquet")])
    folds = d["crossval"]
    assert folds["weights"] == cv["weights"] and folds["weights"].startswith("light embedder")
    assert folds["scores"] == cv["scores"] and len(folds["scores"]["per_fold"]) == 3  # the same models
    assert (folds["model"], folds["folds"], folds["seed"], folds["config"]) == ("embed-logreg", 3, 0, str(files["cfg"]))
    code, out, err = _run(qa)
    text = flat_text(out)
    assert code == 0, err
    assert f"weights: {cv['weights']}" in text and "fold 2" in text and "all (out of fold)" in text
    accuracy = cv["scores"]["overall"]["accuracy"]
    assert f"all (out of fold) 24 {accuracy:.3f}" in text  # the overall row, as crossval prints it
    assert "Dataset(" not in out


def test_qa_without_issues_names_the_truth_not_a_repr(tmp_path: Path) -> None:
    schema = LabelSchema.from_names(["cat", "dog"], task=Task.DETECTION)
    box = [[2.0, 2, 20, 20], [30, 30, 50, 56], [5, 5, 25, 30]]
    truth = Dataset(schema, Images(path=["a.png", "b.png"], width=[64, 64], height=[64, 64]),
                       Annotations(image=[0, 0, 1], label=[0, 1, 0], box=box))
    io.write(truth, tmp_path / "gt.json", "coco")
    coco = json.loads((tmp_path / "gt.json").read_text())
    pred = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.95}
            for a in coco["annotations"]]
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    code, out, err = _run(["qa", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json"),
                           "--out", str(tmp_path / "issues.json")])
    text = flat_text(out)
    assert code == 0, err
    assert f"No label issues found in {tmp_path / 'gt.json'} (2 images, 3 annotations)" in text
    assert "Dataset(" not in out


def test_predict_shows_a_dash_for_a_class_nothing_was_predicted_as(files: dict[str, Path]) -> None:
    truth = io.read(files["data"], "parquet")
    cfg = TrainConfig(data="unused", backbone="light", params={"cache_dir": str(files["dir"] / "cache")})
    folder = build_model(cfg).fit(truth).save(files["dir"] / "model")
    reds = truth.select_images(np.flatnonzero(np.bincount(truth.annotations.image[truth.annotations.label == 0],
                                                          minlength=truth.n_images)))
    io.write(reds, files["dir"] / "data" / "reds.parquet", "parquet")
    args = ["predict", str(folder), str(files["dir"] / "data" / "reds.parquet"), "--from", "parquet", "--out",
            str(files["dir"] / "p.parquet"), "--overwrite"]
    d = _json(args)
    none = [c["name"] for c in d["per_class"] if c["predictions"] == 0]
    assert none, d["per_class"]  # the light embedder tells red squares from the rest
    code, out, _ = _run(args)
    text = flat_text(out)
    assert code == 0 and "nan" not in text
    for name in none:
        assert f"{name} 0 -" in text
