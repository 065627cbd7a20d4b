"""The classifiers against independent references (scikit-learn run directly on the same features; the schema's
order), and bad input from the Python API refused with a maslow error naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations
from maslow.errors import InvalidDatasetError, MaslowError, ModelError, SchemaError
from maslow.io.images import image_path
from maslow.metrics import PROBS_COLUMN, classification_scores
from maslow.models import TrainConfig
from maslow.models.base import build_model
from maslow.models.classify import probabilities
from maslow.models.evaluate import evaluate
from tests.models.tiny_data import colour_squares

pytest.importorskip("sklearn")
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, top_k_accuracy_score
from sklearn.preprocessing import StandardScaler


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dataset]:
    d = tmp_path_factory.mktemp("ref")
    return {"single": colour_squares(d / "single", 30, seed=0), "multi": colour_squares(d / "multi", 30, seed=1,
                                                                                         multilabel=True)}


def _logreg(tmp: Path, **params: object) -> TrainConfig:
    return TrainConfig(data="unused", backbone="light", params={"cache_dir": str(tmp / "cache"), **params})


def _features(ds: Dataset, tmp: Path) -> np.ndarray:
    from maslow.embed import embed_dataset

    return np.asarray(embed_dataset(ds, embedder="light", cache_dir=tmp / "cache"), np.float64)


@pytest.mark.parametrize("params", [pytest.param({"C": 0.3}, id="C"),
                                    pytest.param({"class_weight": "balanced"}, id="balanced")])
def test_embed_logreg_single_label_is_scikit_learns_logistic_regression(params: dict[str, object],
                                                                        data: dict[str, Dataset],
                                                                        tmp_path: Path) -> None:
    ds = data["single"]
    keep = np.flatnonzero(ds.annotations.image % 5 != 4)  # some images without a label: left out of training
    train, test = ds.select(keep).select_images(np.arange(20)), ds.select_images(np.arange(20, 30))
    got = probabilities(build_model(_logreg(tmp_path, **params)).fit(train).predict(test))
    rows = train.annotations.image
    x, xt = _features(train, tmp_path)[rows], _features(test, tmp_path)
    scaler = StandardScaler().fit(x)
    ref = LogisticRegression(max_iter=1000, **params).fit(scaler.transform(x), train.annotations.label)  # type: ignore[arg-type]
    np.testing.assert_allclose(got, ref.predict_proba(scaler.transform(xt)), atol=1e-9)


def test_embed_logreg_binary_with_an_absent_class_and_multilabel_match_scikit_learn(data: dict[str, Dataset],
                                                                                    tmp_path: Path) -> None:
    ds = data["single"]
    two = ds.select(np.flatnonzero(ds.annotations.label != 1))  # class 1 never seen: binary on classes 0 and 2
    got = probabilities(build_model(_logreg(tmp_path)).fit(two).predict(ds))
    rows = two.annotations.image
    x = _features(ds, tmp_path)
    scaler = StandardScaler().fit(x[rows])
    ref = LogisticRegression(max_iter=1000).fit(scaler.transform(x[rows]), two.annotations.label)
    np.testing.assert_allclose(got[:, [0, 2]], ref.predict_proba(scaler.transform(x)), atol=1e-9)
    assert got[:, 1].max() < 1e-12
    ml = data["multi"]
    got = probabilities(build_model(_logreg(tmp_path)).fit(ml).predict(ml))
    y = np.zeros((ml.n_images, 3), np.int64)
    y[ml.annotations.image, ml.annotations.label] = 1
    x = StandardScaler().fit_transform(_features(ml, tmp_path))
    ref = np.stack([LogisticRegression(max_iter=1000).fit(x, y[:, j]).predict_proba(x)[:, 1] for j in range(3)], 1)
    np.testing.assert_allclose(got, ref, atol=1e-9)


@pytest.mark.parametrize(("params", "match"), [
    pytest.param({"class_weight": "bal"}, r"'params\.class_weight' must be 'balanced' or null, got 'bal'",
                 id="class-weight"),
    pytest.param({"use_cache": "no"}, r"'params\.use_cache' must be true or false, got 'no'", id="use-cache"),
])
def test_embed_logreg_bad_params_are_named(params: dict[str, object], match: str, tmp_path: Path) -> None:
    with pytest.raises(MaslowError, match=match):
        build_model(_logreg(tmp_path, **params))  # was scikit-learn's InvalidParameterError at fit time


def test_embed_logreg_non_finite_features_are_a_model_error(data: dict[str, Dataset], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A torchvision embedder whose cached weights hold a NaN: scikit-learn's own ValueError at fit (and at
    predict, every image silently class 0 with a NaN score) became a ModelError naming the image."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    from maslow.embed.backbones import TORCHVISION

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    state = torchvision.models.resnet18(weights=None).state_dict()
    state["conv1.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, folder / TORCHVISION["resnet18"][0])
    ds = data["single"].select_images(np.arange(6))
    cfg = _logreg(tmp_path).with_overrides(backbone="torchvision:resnet18")
    with pytest.raises(ModelError, match=r"image 0 \(images/sq_000\.png\).*features must be finite, got nan"):
        build_model(cfg).fit(ds)


@pytest.mark.parametrize("model", ["embed-logreg", "torchvision-classifier"])
def test_a_single_path_is_refused(model: str, data: dict[str, Dataset], tmp_path: Path) -> None:
    ds = data["single"].select_images(np.arange(6))
    if model == "embed-logreg":
        cfg = _logreg(tmp_path)
    else:
        pytest.importorskip("torch")
        cfg = _torch_cfg()
    fitted = build_model(cfg).fit(ds)
    one = str(image_path(ds, 0))
    with pytest.raises(InvalidDatasetError, match="single path"):  # was read as one path per character
        fitted.predict(one)
    assert fitted.predict([one]).n_images == 1


def _torch_cfg(**kw: object) -> TrainConfig:
    base: dict[str, object] = {"data": "unused", "model": "torchvision-classifier", "backbone": "resnet18",
                               "pretrained": "no", "image_size": 32, "epochs": 1, "batch_size": 4, "threads": 1}
    return TrainConfig.from_dict({**base, **kw})


def test_torch_classifier_label_order_is_the_schemas(data: dict[str, Dataset]) -> None:
    """Trained on one class only (the other images unlabelled), the model predicts that class's index in the
    schema, whatever the order of the names; probabilities sum to 1 and top-k agrees with scikit-learn."""
    pytest.importorskip("torch")
    ds = data["single"].select_images(np.arange(12))
    blue = np.flatnonzero(ds.annotations.label == 2)  # 4 of 12 images keep a label
    for names in (("red", "green", "blue"), ("blue", "red", "green")):
        idx = names.index("blue")
        train = Dataset(LabelSchema.from_names(list(names), task="classification"), ds.images,
                        Annotations(image=ds.annotations.image[blue], label=np.full(len(blue), idx)), root=ds.root)
        model = build_model(_torch_cfg(epochs=5, lr=1e-2)).fit(train)
        pred = model.predict(ds)
        probs = pred.annotations.extra[PROBS_COLUMN]
        np.testing.assert_allclose(probs.sum(1), 1, atol=1e-12)
        assert (pred.annotations.label == idx).all()
        assert pred.schema.names[int(pred.annotations.label[0])] == "blue"
    colours = ("red", "green", "blue")  # tiny_data's class order
    truth = Dataset(pred.schema, ds.images, Annotations(
        image=ds.annotations.image, label=np.asarray([names.index(colours[c]) for c in ds.annotations.label])))
    got = classification_scores(truth, pred, k=(2,)).top_k_accuracy[2]
    assert got == pytest.approx(top_k_accuracy_score(truth.annotations.label, probs, k=2, labels=[0, 1, 2]))


@pytest.mark.parametrize(("params", "match"), [
    pytest.param({"class_weight": "balanced"}, r"'params\.class_weight' is not a setting of torchvision-classifier",
                 id="unknown"),  # was silently ignored: a typo trained another model
    pytest.param({"hflip": "no"}, r"'params\.hflip' must be true or false, got 'no'", id="hflip"),  # bool("no")
])
def test_torch_classifier_bad_params_are_named(params: dict[str, object], match: str) -> None:
    pytest.importorskip("torch")
    with pytest.raises(MaslowError, match=match):
        build_model(_torch_cfg(params=params))


def test_torch_classifier_diverging_loss_is_a_model_error(data: dict[str, Dataset]) -> None:
    pytest.importorskip("torch")
    with pytest.raises(ModelError, match=r"training loss became nan at epoch 0; lower lr"):
        build_model(_torch_cfg(lr=1e12, epochs=2)).fit(data["single"].select_images(np.arange(8)))  # was NaN probs


def test_torch_classifier_trains_on_one_image(data: dict[str, Dataset]) -> None:
    pytest.importorskip("torch")
    one = build_model(_torch_cfg()).fit(data["single"].select_images([0]))  # was torch's batch-norm ValueError
    assert len(one.history.epochs) == 1 and np.isfinite(one.history.epochs[0].loss)


def test_torch_classifier_unlabelled_data_is_said(data: dict[str, Dataset]) -> None:
    pytest.importorskip("torch")
    ds = data["single"].select_images(np.arange(8))
    unlabelled = ds.replace(annotations=ds.annotations.take(np.zeros(0, np.int64)))
    with pytest.raises(ModelError, match="at least one labelled image"):
        build_model(_torch_cfg()).fit(unlabelled)
    with pytest.raises(ModelError, match=r"must include 'accuracy', got none \(nothing could be scored"):
        build_model(_torch_cfg()).fit(ds, val=unlabelled)
    with pytest.raises(SchemaError, match="task must be classification"):
        build_model(_torch_cfg()).fit(data["multi"])


def test_evaluate_refuses_an_unknown_task_and_agrees_with_scikit_learn(data: dict[str, Dataset]) -> None:
    ds = data["single"]
    with pytest.raises(SchemaError, match=r"evaluate: task must be one of .*, got 'bogus'"):
        evaluate(ds, ds, task="bogus")  # was the enum's bare ValueError
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), ds.n_images)
    top = probs.argmax(1)
    pred = ds.replace(annotations=Annotations(image=np.arange(ds.n_images), label=top, score=probs.max(1),
                                              extra={PROBS_COLUMN: probs}))
    truth = ds.select(np.flatnonzero(ds.annotations.image % 4 != 0))  # unlabelled images are left out
    y = np.full(ds.n_images, -1)
    y[truth.annotations.image] = truth.annotations.label
    m = y >= 0
    got = evaluate(truth, pred)
    assert got["accuracy"] == pytest.approx(accuracy_score(y[m], top[m]))
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y[m], top[m]))
    assert got["f1_macro"] == pytest.approx(f1_score(y[m], top[m], average="macro"))


DAMAGE = {"truncated": lambda b: b[: len(b) // 2], "empty": lambda b: b"", "text": lambda b: b"not a model file",
          "zeroed": lambda b: b[:600] + bytes(2000) + b[2600:]}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=list(DAMAGE))
@pytest.mark.parametrize("model", ["embed-logreg", "torchvision-classifier"])
def test_a_damaged_model_file_is_a_model_error_naming_it(model: str, damage: object, data: dict[str, Dataset],
                                                         tmp_path: Path) -> None:
    from maslow.models import load_model

    ds = data["single"].select_images(np.arange(6))
    if model == "embed-logreg":
        cfg, name = _logreg(tmp_path), "classifier.npz"
    else:
        pytest.importorskip("torch")
        cfg, name = _torch_cfg(), "weights.pt"
    folder = build_model(cfg).fit(ds).save(tmp_path / "model")
    file = folder / name
    file.write_bytes(damage(file.read_bytes()))  # type: ignore[operator]
    with pytest.raises(ModelError, match=rf"{name}: must be the .* that save wrote, got an unreadable file"):
        load_model(folder)  # was numpy's BadZipFile/EOFError, torch's EOFError/KeyError/UnpicklingError


@pytest.mark.parametrize(("field", "value", "match"), [
    pytest.param("intercept", np.zeros(2), r"field 'intercept' must be shape \(3,\), got \(2,\)", id="intercept"),
    pytest.param("mean", np.zeros(5), r"field 'mean' must be shape \(256,\), got \(5,\)", id="mean"),
    pytest.param("kind", np.asarray("sigmoid"), r"field 'kind' must be 'softmax', got sigmoid", id="kind"),
    pytest.param("scale", np.full(256, np.nan), r"field 'scale' must hold finite floats, got 256 non-finite",
                 id="nan"),
])
def test_an_inconsistent_classifier_file_is_named(field: str, value: np.ndarray, match: str,
                                                  data: dict[str, Dataset], tmp_path: Path) -> None:
    """Arrays of other shapes loaded fine and failed (or silently misbehaved) at predict time."""
    from maslow.models import load_model

    folder = build_model(_logreg(tmp_path)).fit(data["single"]).save(tmp_path / "model")
    with np.load(folder / "classifier.npz") as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(folder / "classifier.npz", **{**arrays, field: value})
    with pytest.raises(ModelError, match=match):
        load_model(folder)


def test_classes_in_another_order_are_refused(data: dict[str, Dataset], tmp_path: Path) -> None:
    """Predictions (or a validation set) whose names are in another order scored 0 accuracy for a perfect model."""
    ds = data["single"]
    turned = ds.replace(schema=LabelSchema.from_names(["blue", "red", "green"], task="classification"))
    with pytest.raises(SchemaError, match=r"evaluate: pred classes must be truth's \['blue', 'red', 'green'\]"):
        evaluate(turned, ds)
    with pytest.raises(SchemaError, match=r"val classes must be train's \['red', 'green', 'blue'\]"):
        build_model(_logreg(tmp_path)).fit(ds, val=turned)
