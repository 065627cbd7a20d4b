"""``embed-logreg`` (light embedder, no torch): learns, round-trips, batch-size invariant, multi-label, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.tables import Annotations
from maslow.errors import InvalidDatasetError, MaslowError, ModelError, SchemaError
from maslow.metrics import PROBS_COLUMN, classification_scores, multilabel_scores
from maslow.models import Model, TrainConfig, load_model
from maslow.models.base import EpochResult, build_model
from maslow.models.classify import EmbeddingClassifier, probabilities
from maslow.models.evaluate import evaluate
from maslow.sample import shapes
from tests.models.tiny_data import colour_squares

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dataset]:
    d = tmp_path_factory.mktemp("cls")
    single = colour_squares(d / "single", 45, seed=0)
    multi = colour_squares(d / "multi", 45, seed=1, multilabel=True)
    return {"dir": d, "single": single, "multi": multi}  # type: ignore[dict-item]


def _cfg(tmp: Path, **params: object) -> TrainConfig:
    return TrainConfig(data="unused", backbone="light", params={"cache_dir": str(tmp / "cache"), **params})


def test_learns_single_label_and_reports_history(data: dict[str, Dataset]) -> None:
    ds = data["single"]
    train, test = ds.select_images(np.arange(30)), ds.select_images(np.arange(30, 45))
    seen: list[EpochResult] = []
    model = build_model(_cfg(Path(str(data["dir"])))).fit(train, val=test, on_epoch=seen.append)
    assert isinstance(model, EmbeddingClassifier) and isinstance(model, Model)
    h = model.history
    assert len(h.epochs) == 1 and seen == list(h.epochs) and h.metric == "accuracy" and h.best_epoch == 0
    assert h.epochs[0].loss < np.log(3)  # better than the uniform guess's log loss
    assert h.best is not None and h.best > 0.6  # chance is 1/3
    assert "light" in h.weights
    pred = model.predict(test)
    assert pred.images is test.images and pred.schema == ds.schema
    a = pred.annotations
    assert np.array_equal(a.image, np.arange(15)) and set(a.source.tolist()) == {"model"}
    probs = a.extra[PROBS_COLUMN]
    assert probs.shape == (15, 3) and np.allclose(probs.sum(1), 1)
    assert np.array_equal(a.label, probs.argmax(1)) and np.allclose(a.score, probs.max(1))
    assert evaluate(test, pred)["accuracy"] == pytest.approx(h.best)
    assert classification_scores(test, pred, k=(2,)).top_k_accuracy[2] >= h.best


def test_save_load_round_trip_and_batch_size_invariance(data: dict[str, Dataset], tmp_path: Path) -> None:
    ds = data["single"]
    model = build_model(_cfg(tmp_path)).fit(ds.select_images(np.arange(30)))
    test = ds.select_images(np.arange(30, 45))
    pred = model.predict(test)
    folder = model.save(tmp_path / "model")
    doc = json.loads((folder / "model.json").read_text())
    assert doc["adapter"] == "embed-logreg" and doc["extra"]["embedder"] == "light"
    assert sorted(p.name for p in folder.iterdir()) == ["classifier.npz", "model.json"]
    loaded = load_model(folder)
    assert isinstance(loaded, EmbeddingClassifier) and loaded.schema == model.schema
    assert loaded.history == model.history
    for bs in (1, 4, 64):
        again = loaded.predict(test, batch_size=bs)
        assert np.array_equal(again.annotations.extra[PROBS_COLUMN], pred.annotations.extra[PROBS_COLUMN])
        assert np.array_equal(again.annotations.label, pred.annotations.label)
    # image paths work like a Dataset
    from maslow.io.images import image_path

    by_path = loaded.predict([image_path(test, i) for i in range(test.n_images)])
    assert np.array_equal(by_path.annotations.extra[PROBS_COLUMN], pred.annotations.extra[PROBS_COLUMN])
    assert by_path.images.width.tolist() == [32] * 15


def test_multilabel_one_vs_rest(data: dict[str, Dataset], tmp_path: Path) -> None:
    ds = data["multi"]
    train, test = ds.select_images(np.arange(30)), ds.select_images(np.arange(30, 45))
    model = build_model(_cfg(tmp_path)).fit(train, val=test)
    assert model.history.metric == "f1_micro"
    pred = model.predict(test)
    k = len(ds.schema.classes)
    a = pred.annotations
    assert len(a) == 15 * k and np.array_equal(a.label, np.tile(np.arange(k), 15))
    p = probabilities(pred)
    assert p.shape == (15, k) and ((p >= 0) & (p <= 1)).all()
    y = np.zeros((15, k), bool)
    y[test.annotations.image, test.annotations.label] = True
    chance = multilabel_scores(test, test.replace(annotations=test.annotations.take(np.zeros(0, np.int64)))).f1_micro
    f1 = multilabel_scores(test, pred).f1_micro
    assert f1 > 0.6 and f1 == pytest.approx(model.history.best)
    assert np.isnan(chance) or f1 > chance
    assert ((p >= 0.5) == y).mean() > 0.7


def test_val_fraction_holds_images_out(data: dict[str, Dataset], tmp_path: Path) -> None:
    model = build_model(_cfg(tmp_path).with_overrides(val_fraction=0.3)).fit(data["single"])
    assert model.history.metric == "accuracy" and model.history.best is not None
    no_val = build_model(_cfg(tmp_path)).fit(data["single"])
    assert no_val.history.metric == "" and no_val.history.best is None


def test_unlabelled_images_are_skipped_and_a_missing_class_gets_zero(data: dict[str, Dataset], tmp_path: Path) -> None:
    ds = data["single"]
    keep = np.flatnonzero(ds.annotations.label != 2)  # class 2 never seen; its images become unlabelled
    model = build_model(_cfg(tmp_path)).fit(ds.select(keep))
    p = model.predict(ds).annotations.extra[PROBS_COLUMN]
    assert p.shape == (45, 3) and p[:, 2].max() < 1e-6


def test_errors(data: dict[str, Dataset], tmp_path: Path) -> None:
    with pytest.raises(MaslowError, match=r"params\.gamma"):
        build_model(_cfg(tmp_path, gamma=1))
    # bad values are refused with the field named, not by scikit-learn's InvalidParameterError at fit time
    with pytest.raises(MaslowError, match=r"'params\.C' must be a number > 0, got -1"):
        build_model(_cfg(tmp_path, C=-1))
    with pytest.raises(MaslowError, match=r"'params\.max_iter' must be an integer >= 1, got 'many'"):
        build_model(_cfg(tmp_path, max_iter="many"))
    with pytest.raises(MaslowError, match=r"'params' must be a mapping of adapter settings, got int"):
        TrainConfig(data="unused", params=5)  # type: ignore[arg-type]
    with pytest.raises(MaslowError, match=r"'lr' must be a number >= 0, got nan"):
        TrainConfig(data="unused", lr=float("nan"))
    model = build_model(_cfg(tmp_path))
    with pytest.raises(ModelError, match="not trained"):
        model.predict(data["single"])
    with pytest.raises(SchemaError, match="classification or multilabel"):
        model.fit(shapes(6))
    one = data["single"]
    doubled = one.replace(annotations=Annotations(image=np.repeat(np.arange(45), 2),
                                                  label=np.tile([0, 1], 45)))
    with pytest.raises(InvalidDatasetError, match=r"image 0 .* must have one label"):
        model.fit(doubled)
    with pytest.raises(ModelError, match="not a maslow model folder"):
        EmbeddingClassifier.load(tmp_path)
    trained = build_model(_cfg(tmp_path)).fit(one)
    empty = trained.predict(one.select_images(np.zeros(0, np.int64)))
    assert empty.n_images == 0 and empty.annotations.extra[PROBS_COLUMN].shape == (0, 3)
