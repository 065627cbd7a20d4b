"""Data problems are said before anything trains: validation images without a label, missing image files,
classes the model cannot learn."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.errors import FormatError, MaslowError, MaslowWarning
from maslow.models.base import TrainConfig
from maslow.models.crossval import out_of_fold
from maslow.models.train import split_for_training, train
from maslow.sample import write_shapes
from tests.models.tiny_data import colour_squares


def _with_split(ds: Dataset, split: list[str]) -> Dataset:
    return ds.replace(images=dataclasses.replace(ds.images, split=np.asarray(split, dtype=object)))


def test_validation_images_without_a_label_are_refused_before_training(tmp_path: Path) -> None:
    ds = _with_split(colour_squares(tmp_path, 12), ["train"] * 8 + ["val"] * 4)
    cfg = TrainConfig(data="unused", backbone="light")
    assert split_for_training(ds, cfg)[1] is not None  # labelled: fine
    unlabelled = ds.select(ds.annotations.image < 8)  # the 4 val images keep no annotation
    with pytest.raises(MaslowError, match=r"the 4 validation images of split 'val' must have labels"):
        split_for_training(unlabelled, cfg)
    # one labelled validation image is enough to score on
    split_for_training(ds.select(ds.annotations.image < 9), cfg)


def test_crossval_names_a_missing_image_before_the_first_fold(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    ds = colour_squares(tmp_path, 12)
    (tmp_path / str(ds.images.path[7])).unlink()
    started: list[tuple[int, int]] = []
    cfg = TrainConfig(data="unused", backbone="light", params={"cache_dir": str(tmp_path / "cache")})
    with pytest.raises(FormatError, match=r"sq_007\.png: image file not found \(1 of the 12 images to "
                                          r"cross-validate missing\)"):
        out_of_fold(ds, cfg, folds=3, progress=lambda done, n: started.append((done, n)))
    assert started == []  # no fold started


def test_train_names_a_missing_validation_image_before_the_first_batch(tmp_path: Path) -> None:
    pytest.importorskip("torchvision")
    pytest.importorskip("efficientnet_lite_pytorch")
    ds = write_shapes(tmp_path / "shapes", 6, seed=1, width=64, height=48)
    ds = _with_split(ds, ["train"] * 4 + ["val"] * 2)
    (tmp_path / "shapes" / str(ds.images.path[5])).unlink()
    batches: list[int] = []
    cfg = TrainConfig(data="unused", model="fasterrcnn", image_size=64, epochs=1, batch_size=2, threads=1,
                      tracking="off", out=str(tmp_path / "model"),
                      params={"proposals": 20, "box_batch_size": 16})
    with pytest.raises(FormatError, match=r"image file not found \(1 of the 2 validation images missing\)"):
        train(cfg, dataset=ds, on_batch=lambda b, n, loss: batches.append(b))
    assert batches == [] and not (tmp_path / "model").exists()  # a whole epoch trained before it was found


def test_classes_the_model_cannot_learn_are_said(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    ds = _with_split(colour_squares(tmp_path, 12), ["train"] * 8 + ["val"] * 4)  # labels: row % 3
    cfg = TrainConfig(data="unused", backbone="light", tracking="off", out=str(tmp_path / "model"),
                      params={"cache_dir": str(tmp_path / "cache")})
    train(cfg, dataset=ds)  # every class trains: nothing said (warnings are errors in the tests)
    no_blue = ds.select((ds.annotations.label != 2) | (ds.images.split[ds.annotations.image] == "val"))
    with pytest.warns(MaslowWarning, match=r"1 class has annotations in the validation/test images but none in "
                                           r"the training images, so the model cannot learn it: 'blue' \(2 "
                                           r"annotations\)"):
        result = train(cfg, dataset=no_blue)
    assert result.metrics["accuracy"] <= 0.5  # the 2 val images of "blue" are necessarily wrong
    only_red = ds.select(ds.annotations.label == 0)
    with pytest.warns(MaslowWarning, match=r"every labelled training image is of class 'red'"):
        train(cfg, dataset=only_red)
