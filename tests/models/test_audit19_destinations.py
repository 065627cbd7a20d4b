"""Audit 19: a file ``--out`` of ``predict`` and ``crossval``, and ``export --onnx``'s DST, replaced a file of the model
or an image read (``predict M imgs --out imgs/a.png --to coco`` wrote JSON over the image, ``--out M/model.json``
over the model, ``export M M/weights.pt --onnx`` ONNX over the weights; exit 0). Now refused with exit 2, the files
left as they were; a new file beside the images or elsewhere is written as before."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from maslow import io
from tests.cli.test_destination_safety import _refused
from tests.helpers import flat_text
from tests.helpers import run_cli_streams as _run


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as the current folder: coloured squares (9 images) in ``data/``, a config, a fitted model."""
    pytest.importorskip("sklearn")
    from maslow.models import TrainConfig
    from maslow.models.base import build_model
    from tests.models.tiny_data import colour_squares

    monkeypatch.chdir(tmp_path)
    ds = colour_squares(tmp_path / "data", 9, seed=1)
    io.write(ds, tmp_path / "data" / "ds.parquet", "parquet")
    (tmp_path / "cfg.yaml").write_text(f"data: data/ds.parquet\nformat: parquet\nbackbone: light\n"
                                       f"params:\n  cache_dir: {tmp_path / 'cache'}\n")
    cfg = TrainConfig(data="unused", backbone="light", params={"cache_dir": str(tmp_path / "cache")})
    build_model(cfg).fit(io.read(tmp_path / "data" / "ds.parquet", "parquet")).save(tmp_path / "model")
    return tmp_path


def _contents(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}




@pytest.mark.parametrize("dst", ["data/images/sq_004.png", "data/images/../images/sq_004.png", "link.png"])
def test_predict_never_writes_over_an_image_read(here: Path, dst: str) -> None:
    os.symlink(here / "data" / "images" / "sq_004.png", here / "link.png")  # a link to the image is that image
    before = _contents(here / "data")
    _refused(["predict", "model", "data/images", "--out", dst, "--to", "coco"], f"--out {dst}", "is the image",
             "sq_004.png", "replace")
    _refused(["predict", "model", "data/ds.parquet", "--from", "parquet", "--out", dst, "--to", "coco",
              "--overwrite"], f"--out {dst}", "is the image")
    assert _contents(here / "data") == before


@pytest.mark.parametrize("dst", ["model/model.json", "model/new.json", "model/../model/model.json"])
def test_predict_never_writes_into_the_model_folder(here: Path, dst: str) -> None:
    before = _contents(here / "model")
    _refused(["predict", "model", "data/images", "--out", dst, "--to", "coco", "--overwrite"], f"--out {dst}",
             "inside the model folder model")
    assert _contents(here / "model") == before
    code, _, err = _run(["predict", "model", "data/images", "--out", "p.parquet"])  # the model still loads
    assert code == 0, err


def test_predict_still_writes_a_new_file_beside_the_images_or_over_an_unrelated_file(here: Path) -> None:
    (here / "other.json").write_text("old")
    for dst in ("data/images/pred.json", "other.json"):
        code, out, err = _run(["predict", "model", "data/images", "--out", dst, "--to", "coco", "--json"])
        assert code == 0, err
        assert json.loads(out)["n_images"] == 9
        assert json.loads((here / dst).read_text())["images"]


def test_crossval_never_writes_over_a_training_image(here: Path) -> None:
    before = _contents(here)
    _refused(["crossval", "cfg.yaml", "--folds", "2", "--out", "data/images/sq_002.png", "--to", "coco"],
             "--out data/images/sq_002.png", "is the image")
    assert _contents(here) == before  # refused before any fold trained: nothing written, no probabilities


@pytest.mark.parametrize("dst", ["model/weights.pt", "model/model.json", "model/notes.json", "model"])
def test_export_onnx_never_writes_over_the_model(here: Path, dst: str) -> None:
    (here / "model" / "weights.pt").write_bytes(b"weights")  # what a torch model folder holds too
    before = _contents(here / "model")
    _refused(["export", "model", dst, "--onnx"], dst, "inside the model folder model", ".onnx")
    assert _contents(here / "model") == before


def test_export_onnx_checks_a_path_outside_the_model_or_an_onnx_file_in_it_no_further(here: Path) -> None:
    # the destination is fine: the embed-logreg adapter is then refused as not exportable (no torch network)
    for dst in ("model/other.onnx", "out.onnx"):
        code, _out, err = _run(["export", "model", dst, "--onnx"])
        assert code == 2 and "not exportable" in flat_text(err) and "inside" not in flat_text(err), err
    assert not (here / "model" / "other.onnx").exists() and not (here / "out.onnx").exists()


# -- LOW findings of the same audit: empty folds, an empty dataset, epochs: 0


@pytest.mark.parametrize(("groups", "labels", "folds", "seed"), [
    ([0, 1, 2, 3, 0, 1], [0, 1, 1, 1, 0, 0], 4, 81),  # gave fold sizes [2, 2, 0, 2]
    ([0, 1, 2, 3, 4, 5, 2, 3], [1, 0, 2, 2, 0, 1, 0, 1], 5, 50),  # gave [2, 0, 2, 2, 2]
])
def test_no_fold_is_empty_when_there_are_enough_groups(groups: list[int], labels: list[int], folds: int,
                                                       seed: int) -> None:
    import numpy as np

    from maslow import Annotations, Dataset, Images, LabelSchema
    from maslow.models.crossval import fold_assignments

    n = len(groups)
    ds = Dataset(LabelSchema.from_names([f"c{i}" for i in range(max(labels) + 1)], task="classification"),
                 Images(path=[f"{i}.png" for i in range(n)], width=[8] * n, height=[8] * n),
                 Annotations(image=np.arange(n), label=labels))
    g = np.asarray([str(v) for v in groups], dtype=object)
    fold = fold_assignments(ds, folds, seed, groups=g)
    assert (np.bincount(fold, minlength=folds) > 0).all(), fold
    for v in set(groups):  # groups stay whole
        assert len(set(fold[g == str(v)].tolist())) == 1


def test_training_on_a_dataset_without_images_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)
    Path("empty").mkdir()
    Path("cfg.yaml").write_text("data: empty\nformat: imagefolder\nmodel: embed-logreg\nbackbone: light\n"
                                "tracking: 'off'\nout: run\n")
    _refused(["train", "cfg.yaml"], "has no images")
    _code, _, err = _run(["train", "cfg.yaml"])
    assert "'val' or 'test'" not in flat_text(err)


def test_epochs_0_is_refused_for_an_adapter_that_trains_in_epochs(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torchvision")
    monkeypatch.chdir(tmp_path)
    Path("d").mkdir()
    Path("cfg.yaml").write_text("data: d\nformat: imagefolder\nmodel: torchvision-classifier\n"
                                "backbone: mobilenet_v3_small\npretrained: 'no'\nepochs: 0\ntracking: 'off'\nout: run\n")
    _refused(["train", "cfg.yaml"], "cfg.yaml", "'epochs' must be >= 1", "untrained")  # before the data is read
    assert not Path("run").exists()
