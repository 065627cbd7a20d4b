"""`maslow predict` and `maslow crossval`: exit codes and the parsed --json output (equal to the library's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow import io
from maslow.metrics import PROBS_COLUMN
from maslow.models import TrainConfig
from maslow.models.base import build_model
from maslow.models.crossval import FOLD_COLUMN
from tests.helpers import run_cli as _run
from tests.models.tiny_data import colour_squares

pytest.importorskip("sklearn")


def _json(args: list[str]) -> Any:
    code, out = _run([*args, "--json"])
    assert code == 0, out
    return json.loads(out)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models_cli")
    ds = colour_squares(d / "data", 30, seed=3, frames_per_sequence=2)
    io.write(ds, d / "data" / "ds.parquet", "parquet")
    cfg = d / "cfg.yaml"
    cfg.write_text(f"data: data/ds.parquet\nformat: parquet\nbackbone: light\nparams:\n  cache_dir: {d / 'cache'}\n")
    return {"dir": d, "cfg": cfg, "data": d / "data" / "ds.parquet", "images": d / "data" / "images"}


def test_crossval_end_to_end(files: dict[str, Path]) -> None:
    out = files["dir"] / "oof" / "pred.parquet"
    d = _json(["crossval", str(files["cfg"]), "--folds", "3", "--out", str(out)])
    assert d["folds"] == 3 and d["n_images"] == 30 and d["model"] == "embed-logreg"
    s = d["scores"]
    assert len(s["per_fold"]) == 3 and sum(s["n_images"]) == 30
    assert s["overall"]["accuracy"] > 0.6  # chance: 1/3
    oof = io.read(out, "parquet")
    truth = io.read(files["data"], "parquet")
    assert np.array_equal(oof.images.path, truth.images.path)
    fold = oof.images.extra[FOLD_COLUMN]
    assert sorted(set(fold.tolist())) == [0, 1, 2]
    probs = np.load(d["probs"])
    assert Path(d["probs"]) == out.parent / "pred.probs.npy"
    assert probs.shape == (30, 3) and np.allclose(probs, oof.annotations.extra[PROBS_COLUMN])
    assert np.mean(probs.argmax(1) == truth.annotations.label) == pytest.approx(s["overall"]["accuracy"])
    code, text = _run(["crossval", str(files["cfg"]), "--folds", "3", "--out", str(out), "--overwrite"])
    assert code == 0 and "all (out of fold)" in text


def test_predict_folder_and_dataset(files: dict[str, Path]) -> None:
    truth = io.read(files["data"], "parquet")
    cfg = TrainConfig(data="unused", backbone="light", params={"cache_dir": str(files["dir"] / "cache")})
    model = build_model(cfg).fit(truth)
    folder = model.save(files["dir"] / "model")
    expected = model.predict(truth).annotations.extra[PROBS_COLUMN]

    d = _json(["predict", str(folder), str(files["data"]), "--from", "parquet", "--out",
               str(files["dir"] / "p1.parquet"), "--batch-size", "3"])
    assert d["n_images"] == 30 and d["n_predictions"] == 30 and "light" in d["weights"]
    assert sum(c["predictions"] for c in d["per_class"]) == 30
    p1 = io.read(files["dir"] / "p1.parquet", "parquet")
    assert np.array_equal(p1.annotations.extra[PROBS_COLUMN], expected)
    assert set(p1.annotations.source.tolist()) == {"model"}

    # a plain folder of images (no --from): same probabilities for the same files
    d = _json(["predict", str(folder), str(files["images"]), "--out", str(files["dir"] / "p2.parquet")])
    p2 = io.read(files["dir"] / "p2.parquet", "parquet")
    assert d["n_images"] == 30
    order = {p: i for i, p in enumerate(truth.images.path.tolist())}
    rows = [order["images/" + p] for p in p2.images.path.tolist()]
    assert np.array_equal(p2.annotations.extra[PROBS_COLUMN], expected[rows])
    code, text = _run(["predict", str(folder), str(files["images"]), "--out", str(files["dir"] / "p3.parquet")])
    assert code == 0 and "Predictions per class" in text


@pytest.mark.parametrize(("text", "field"), [
    pytest.param("data: x.parquet\nformat: parquet\nepocs: 3\n", "'epocs'", id="unknown-field"),
    pytest.param("data: x.parquet\nformat: parquet\nepochs: -1\n", "'epochs'", id="negative-epochs"),
    pytest.param("data: x.parquet\nmodel: resnet\n", "'model'", id="unknown-model"),
    pytest.param("format: parquet\n", "'data'", id="missing-data"),
    pytest.param("data: x.parquet\nformat: parquet\nparams: {gamma: 1}\n", "params.gamma", id="unknown-param"),
])
def test_bad_config_exits_2_naming_file_and_field(files: dict[str, Path], text: str, field: str) -> None:
    bad = files["dir"] / "bad.yaml"
    bad.write_text(text)
    code, out = _run(["crossval", str(bad), "--out", str(files["dir"] / "x.parquet")])
    assert code == 2
    flat = " ".join(out.split())
    assert "bad.yaml" in flat and field in flat


def test_predict_bad_model_folder_exits_2(files: dict[str, Path]) -> None:
    code, out = _run(["predict", str(files["dir"]), str(files["images"]), "--out", str(files["dir"] / "x.parquet")])
    assert code == 2 and "not a maslow model folder" in " ".join(out.split())


def test_crossval_writes_probs_atomically(files: dict[str, Path]) -> None:
    out = files["dir"] / "blocked" / "pred.parquet"
    (out.parent / "pred.probs.npy").mkdir(parents=True)  # in the way of the file: np.save raised a traceback
    code, text = _run(["crossval", str(files["cfg"]), "--folds", "2", "--out", str(out)])
    flat = " ".join(text.split())
    assert code == 2 and "pred.probs.npy" in flat and "output must be a writable path" in flat
    # no temp file left, and no predictions without their probabilities (they were written before np.save failed)
    assert sorted(p.name for p in out.parent.iterdir()) == ["pred.probs.npy"]


def test_predict_on_a_missing_folder_names_it(files: dict[str, Path]) -> None:
    truth = io.read(files["data"], "parquet")
    cfg = TrainConfig(data="unused", backbone="light", params={"cache_dir": str(files["dir"] / "cache")})
    folder = build_model(cfg).fit(truth).save(files["dir"] / "model_for_missing")
    code, out = _run(["predict", str(folder), str(files["dir"] / "nope"), "--out", str(files["dir"] / "x.parquet")])
    flat = " ".join(out.split())
    assert code == 2 and "file or folder not found" in flat and "nope" in flat and "workspace" not in flat
    assert not (files["dir"] / "x.parquet").exists()


def test_crossval_multilabel_writes_probs(tmp_path: Path) -> None:
    ds = colour_squares(tmp_path / "data", 24, seed=4, multilabel=True)
    io.write(ds, tmp_path / "data" / "tags.parquet", "parquet")
    cfg = tmp_path / "tags.yaml"
    cfg.write_text(f"data: data/tags.parquet\nformat: parquet\nbackbone: light\nparams:\n  cache_dir: {tmp_path}/c\n")
    d = _json(["crossval", str(cfg), "--folds", "3", "--out", str(tmp_path / "oof.parquet"), "--dedupe"])
    assert "f1_micro" in d["scores"]["overall"] and d["scores"]["overall"]["f1_micro"] > 0.5
    probs = np.load(d["probs"])
    oof = io.read(tmp_path / "oof.parquet", "parquet")
    assert probs.shape == (24, 3) and oof.n_annotations == 24 * 3
    assert np.allclose(probs.reshape(-1), oof.annotations.score)


def test_qa_and_eval_read_crossval_parquet_without_pred_format(files: dict[str, Path]) -> None:
    out = files["dir"] / "two" / "a.parquet"
    d = _json(["crossval", str(files["cfg"]), "--folds", "2", "--out", str(out)])
    other = _json(["crossval", str(files["cfg"]), "--folds", "3", "--out", str(out.with_name("b.parquet"))])
    assert {Path(d["probs"]).name, Path(other["probs"]).name} == {"a.probs.npy", "b.probs.npy"}  # none overwritten
    assert not np.array_equal(np.load(d["probs"]), np.load(other["probs"]))
    code, text = _run(["eval", "--gt", str(files["data"]), "--from", "parquet", "--pred", str(out), "--json", "-"])
    assert code == 0, text  # was "must be a file, got a directory"
    ev = json.loads(text)
    assert ev["summary"]["accuracy"] == pytest.approx(d["scores"]["overall"]["accuracy"])
    issues = files["dir"] / "two" / "issues.json"
    code, text = _run(["qa", "--gt", str(files["data"]), "--from", "parquet", "--pred", str(out), "--out", str(issues)])
    assert code == 0, text
    assert json.loads(issues.read_text())  # the ranked findings
    code, text = _run(["eval", "--gt", str(files["data"]), "--from", "parquet", "--pred", str(files["images"])])
    assert code == 2 and "--pred-format" in " ".join(text.split())
