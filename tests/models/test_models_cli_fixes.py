"""What `maslow predict`, `crossval` and `train` say and write: COCO results carry the category ids of the file
predicted on, crossval's probabilities of an earlier run are not replaced without --overwrite, `train --json` says
the epochs trained, a bad config names its file and field before any data is read, and the "no object" warning
says the score threshold in use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.tables import Annotations
from maslow.errors import MaslowError
from maslow.models.base import TrainConfig, TrainHistory, build_model
from maslow.sample import shapes, write_shapes
from tests.helpers import flat_text
from tests.helpers import run_cli as _run
from tests.models.tiny_data import colour_squares

# -- predict --to coco-results: the input file's category ids ------------------------------------------------------


class _Detector:
    """A loaded "model" trained on shapes (circle id 1, square 2, triangle 3): one box of each class per image."""

    def __init__(self) -> None:
        self.schema = shapes(1).schema
        self.config = TrainConfig(data="unused", model="fasterrcnn")
        self.history = TrainHistory(weights="test")
        self.task = "detection"

    def predict(self, ds: Dataset, *, batch_size: int | None = None, progress: Any = None) -> Dataset:
        n = ds.n_images
        image, label = np.repeat(np.arange(n), 3), np.tile(np.arange(3), n)
        box = np.tile([[1.0, 2.0, 11.0, 12.0], [20, 20, 30, 35], [40, 5, 52, 17]], (n, 1))
        return ds.replace(schema=self.schema, annotations=Annotations(
            image=image, label=label, box=box, score=np.linspace(0.9, 0.2, 3 * n)))


@pytest.fixture
def renumbered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shapes COCO file with other category ids (circle 7, square 3, triangle 1) and image ids (+100)."""
    import maslow.models

    ds = write_shapes(tmp_path / "shapes", 4, seed=0)
    io.write(ds, tmp_path / "shapes" / "annotations.json", "coco")
    doc = json.loads((tmp_path / "shapes" / "annotations.json").read_text())
    new = {c["name"]: i for c, i in zip(doc["categories"], (7, 3, 1), strict=True)}
    old = {c["id"]: new[c["name"]] for c in doc["categories"]}
    doc["categories"] = [{**c, "id": new[c["name"]]} for c in doc["categories"]]
    for a in doc["annotations"]:
        a["category_id"], a["image_id"] = old[a["category_id"]], a["image_id"] + 100
    for im in doc["images"]:
        im["id"] += 100
    (tmp_path / "shapes" / "remapped.json").write_text(json.dumps(doc))
    monkeypatch.setattr(maslow.models, "load_model", lambda path: _Detector())
    (tmp_path / "model").mkdir()
    return tmp_path / "shapes" / "remapped.json"


def test_coco_results_carry_the_category_ids_of_the_file_predicted_on(renumbered: Path, tmp_path: Path) -> None:
    out = tmp_path / "dets.json"
    code, text = _run(["predict", str(tmp_path / "model"), str(renumbered), "--from", "coco", "--out", str(out),
                       "--to", "coco-results"])
    assert code == 0, text
    results = json.loads(out.read_text())
    assert {r["image_id"] for r in results} == {101, 102, 103, 104}
    # each class's id in the file predicted on (the model's own are 1, 2, 3), paired by the box drawn for it
    by_box = {tuple(r["bbox"]): r["category_id"] for r in results}
    assert by_box == {(1.0, 2.0, 10.0, 10.0): 7, (20.0, 20.0, 10.0, 15.0): 3, (40.0, 5.0, 12.0, 12.0): 1}
    # and maslow eval against that file pairs them with its objects of the same class (ids agree: none unknown)
    code, text = _run(["eval", "--gt", str(renumbered), "--pred", str(out), "--json", "-"])
    assert code == 0, text
    assert "unknown" not in json.dumps(json.loads(text)["notes"])


def test_coco_results_for_a_file_lacking_a_class_of_the_model_are_refused(renumbered: Path, tmp_path: Path) -> None:
    doc = json.loads(renumbered.read_text())
    doc["categories"] = [c for c in doc["categories"] if c["name"] != "triangle"]
    doc["annotations"] = [a for a in doc["annotations"] if a["category_id"] != 1]
    lacking = renumbered.with_name("no_triangle.json")
    lacking.write_text(json.dumps(doc))
    out = tmp_path / "dets.json"
    code, text = _run(["predict", str(tmp_path / "model"), str(lacking), "--from", "coco", "--out", str(out),
                       "--to", "coco-results"])
    flat = flat_text(text)
    assert code == 2 and "no_triangle.json" in flat and "lacks: 'triangle' (its categories:" in flat, flat
    assert not out.exists()
    # other outputs carry the model's own schema (its class names): nothing to map, nothing refused
    code, text = _run(["predict", str(tmp_path / "model"), str(lacking), "--from", "coco", "--out",
                       str(tmp_path / "dets.parquet")])
    assert code == 0, text


# -- crossval: the probabilities of an earlier run ------------------------------------------------------------------


@pytest.fixture(scope="module")
def squares(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("sklearn")
    d = tmp_path_factory.mktemp("squares")
    ds = colour_squares(d / "data", 18, seed=3)
    io.write(ds, d / "data" / "ds.parquet", "parquet")
    cfg = d / "cfg.yaml"
    cfg.write_text(f"data: data/ds.parquet\nformat: parquet\nbackbone: light\ntracking: 'off'\nout: {d / 'm'}\n"
                   f"params:\n  cache_dir: {d / 'cache'}\n")
    return {"dir": d, "cfg": cfg, "data": d / "data" / "ds.parquet"}


def test_crossval_keeps_an_earlier_runs_probabilities_without_overwrite(squares: dict[str, Path]) -> None:
    out = squares["dir"] / "oof" / "run.parquet"
    code, text = _run(["crossval", str(squares["cfg"]), "--folds", "2", "--out", str(out)])
    assert code == 0, text
    probs = out.with_name("run.probs.npy")
    before = probs.read_bytes()
    other = out.with_name("run.folder")  # another OUT of the same stem: its probabilities go to run.probs.npy too
    code, text = _run(["crossval", str(squares["cfg"]), "--folds", "3", "--seed", "1", "--out", str(other),
                       "--to", "imagefolder"])
    flat = flat_text(text)
    assert code == 2 and "run.probs.npy" in flat and "--overwrite" in flat and "run.folder is not there" in flat, flat
    assert probs.read_bytes() == before and not other.exists()  # refused before any fold trained: nothing written
    code, text = _run(["crossval", str(squares["cfg"]), "--folds", "3", "--seed", "1", "--out", str(other),
                       "--to", "imagefolder", "--overwrite"])
    assert code == 0, text
    assert probs.read_bytes() != before and other.is_dir()
    own = out.with_name("own.json")  # a file OUT run again is replaced as cp would, and its probabilities with it
    for seed in ("1", "2"):
        code, text = _run(["crossval", str(squares["cfg"]), "--folds", "2", "--seed", seed, "--out", str(own),
                           "--to", "labelstudio"])
        assert code == 0, text
    assert own.with_name("own.probs.npy").is_file()


# -- train --json: the epochs trained --------------------------------------------------------------------------------


def test_train_json_says_the_epochs_trained(squares: dict[str, Path], tmp_path: Path) -> None:
    code, text = _run(["train", str(squares["cfg"]), "--set", "epochs=10", "--out", str(tmp_path / "m"), "--json"])
    assert code == 0, text
    d = json.loads(text)
    # embed-logreg fits in one pass: one epoch trained, as the text output and the history say
    assert d["epochs"] == len(d["history"]["epochs"]) == 1 and d["epochs_configured"] == 10
    assert d["stopped_early"] is False


# -- bad configs: file and field, before the data is read ------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "data"), [("imagefolder", "nothere"), ("coco", "nothere.json"),
                                           ("parquet", "gone/ds.parquet")])
@pytest.mark.parametrize("command", ["train", "crossval"])
def test_a_missing_data_path_is_not_found_naming_the_config_and_field(tmp_path: Path, fmt: str, data: str,
                                                                       command: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"data: {data}\nformat: {fmt}\nbackbone: light\ntracking: 'off'\nout: {tmp_path / 'm'}\n")
    code, text = _run([command, str(cfg), "--out", str(tmp_path / ("m" if command == "train" else "o.parquet"))])
    flat = flat_text(text)
    assert code == 2 and "bad.yaml" in flat and "config field 'data'" in flat and "not found" in flat, flat
    assert data.split("/")[0] in flat
    code, text = _run(["train", str(cfg), "--set", f"data={tmp_path / 'nope'}", "--out", str(tmp_path / "m")])
    flat = flat_text(text)
    assert code == 2 and "--set" in flat and "'data'" in flat and "not found" in flat, flat


def test_load_data_says_not_found_naming_the_field(tmp_path: Path) -> None:
    from maslow.models.base import load_data

    with pytest.raises(MaslowError, match=r"nothere.*config field 'data'.*not found"):
        load_data(TrainConfig(data=str(tmp_path / "nothere"), format="imagefolder"))


@pytest.mark.parametrize(("model", "backbone", "needs"), [
    ("embed-logreg", "nosuch", None),
    ("embed-logreg", "torchvision:nosuch", None),
    ("torchvision-classifier", "nosuch", "torchvision"),
    ("fasterrcnn", "vgg16", "torchvision"),
    ("ssdlite", "resnet50", None),
    ("deeplabv3", "resnet18", None),
])
def test_an_unknown_backbone_is_refused_when_the_model_is_built(model: str, backbone: str, needs: str | None) -> None:
    if needs:
        pytest.importorskip(needs)
    with pytest.raises(MaslowError, match=rf"config field 'backbone' must be .* got '{backbone}'"):
        build_model(TrainConfig(data="unused", model=model, backbone=backbone))


@pytest.mark.parametrize(("model", "backbone"), [
    ("embed-logreg", "light"), ("embed-logreg", "torchvision:resnet18"), ("embed-logreg", "auto"),
    ("fasterrcnn", "resnet50"), ("fasterrcnn", "mobilenet_v3_large"), ("ssdlite", "auto"),
    ("torchvision-classifier", "resnet18"), ("deeplabv3", "mobilenet_v3_large"), ("fcn", "efficientnet-lite0"),
])
def test_known_backbones_still_build(model: str, backbone: str) -> None:
    assert build_model(TrainConfig(data="unused", model=model, backbone=backbone)).config.backbone == backbone


@pytest.mark.parametrize("command", ["train", "crossval", "tune"])
def test_cli_refuses_an_unknown_backbone_before_reading_the_data(tmp_path: Path, command: str) -> None:
    """The data file is not a COCO file: reading it would fail otherwise. The backbone is said first, naming the
    config file and the field."""
    (tmp_path / "broken.json").write_text("not json")
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"data: broken.json\nformat: coco\nbackbone: nosuch\ntracking: 'off'\nout: {tmp_path / 'm'}\n")
    args = {"train": [], "crossval": ["--out", str(tmp_path / "o.parquet")], "tune": ["--trials", "1"]}[command]
    code, text = _run([command, str(cfg), *args])
    flat = flat_text(text)
    assert code == 2 and "bad.yaml" in flat and "config field 'backbone'" in flat and "'nosuch'" in flat, flat


# -- the "no object" warning says the threshold in use ---------------------------------------------------------------


def test_no_object_warning_states_the_score_threshold(capsys: pytest.CaptureFixture[str]) -> None:
    from maslow.cli.models import _warn_if_empty

    truth = shapes(3, seed=1)
    empty = truth.select(np.zeros(truth.n_annotations, bool))
    _warn_if_empty(empty, "detection", TrainConfig(data="x", model="fasterrcnn", params={"score_threshold": 0.001}))
    err = " ".join(capsys.readouterr().err.split())
    assert "params.score_threshold (now 0.001 in the model's config)" in err and "0.05" not in err
    _warn_if_empty(empty, "detection", TrainConfig(data="x", model="fasterrcnn"))
    assert "(now 0.05, the default)" in " ".join(capsys.readouterr().err.split())
