"""TorchvisionSegmenter on tiny generated label maps: loss falls, valid predictions, save/load, batch invariance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.models.base import TrainConfig, build_model, load_model
from maslow.models.evaluate import evaluate

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("efficientnet_lite_pytorch")

COLOURS = {"red": (220, 40, 40), "blue": (40, 80, 220)}


def write_semantic(dst: Path, n: int = 8, *, seed: int = 0, h: int = 36, w: int = 48) -> Dataset:
    """``n`` images: a red square and a blue bar on a grey background, with a void (ignore) border of 2 pixels
    around the square; one mask per class per image, as ``maslow.io.read_masks`` gives."""
    rng = np.random.default_rng(seed)
    (dst / "images").mkdir(parents=True, exist_ok=True)
    img: list[int] = []
    lab: list[int] = []
    mask: list[dict[str, object]] = []
    crowd: list[bool] = []
    from PIL import Image

    for i in range(n):
        px = rng.integers(110, 150, size=(h, w, 3)).astype(np.uint8)
        lm = np.zeros((h, w), np.int64)
        s = int(rng.integers(8, 14))
        x, y = int(rng.integers(2, w - s - 2)), int(rng.integers(2, h - s - 2))
        lm[y - 2:y + s + 2, x - 2:x + s + 2] = 3
        lm[y:y + s, x:x + s] = 1
        px[y:y + s, x:x + s] = COLOURS["red"]
        by = int(rng.integers(0, h - 6))
        lm[by:by + 5, :] = np.where(lm[by:by + 5, :] == 0, 2, lm[by:by + 5, :])
        px[lm == 2] = COLOURS["blue"]
        Image.fromarray(px).save(dst / "images" / f"im_{i:02d}.png")
        for c in np.unique(lm).tolist():
            img.append(i)
            lab.append(int(c))
            mask.append(M.encode(lm == c))
            crowd.append(c == 3)
    schema = LabelSchema(tuple(ClassDef(nm, kind="semantic", id=k if nm != "void" else 255)
                               for k, nm in enumerate(("background", "red", "blue", "void"))),
                         tasks=(Task.SEMANTIC_SEGMENTATION,))
    images = Images(path=obj_array([f"images/im_{i:02d}.png" for i in range(n)]), width=np.full(n, w),
                    height=np.full(n, h))
    ann = Annotations(image=np.asarray(img), label=np.asarray(lab), mask=obj_array(mask), iscrowd=np.asarray(crowd))
    return Dataset(schema, images, ann, root=dst)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return write_semantic(tmp_path_factory.mktemp("sem"), 8)


def _cfg(model: str = "lraspp", **kw: object) -> TrainConfig:
    base: dict[str, object] = {"data": "unused", "model": model, "image_size": 32, "epochs": 3, "batch_size": 4,
                               "lr": 0.05, "threads": 1, "patience": 0, "params": {"optimizer": "sgd"}}
    return TrainConfig.from_dict({**base, **kw})


@pytest.fixture(scope="module")
def trained(data: Dataset) -> object:
    return build_model(_cfg()).fit(data, val=data)


def test_loss_falls_and_predictions_are_a_valid_dataset(trained: object, data: Dataset) -> None:
    h = trained.history  # type: ignore[attr-defined]
    assert h.epochs[-1].loss < h.epochs[0].loss
    assert h.metric == "miou" and "miou" in h.epochs[0].metrics
    assert h.weights == "imagenet efficientnet-lite0 (package)"
    pred = trained.predict(data)  # type: ignore[attr-defined]
    a = pred.annotations
    assert pred.images is data.images and set(a.source.tolist()) == {"model"}
    assert np.all((a.score > 0) & (a.score <= 1))
    assert 3 not in a.label.tolist()  # the void class is never predicted
    # one mask per predicted class per image, tiling each image exactly
    for i in range(data.n_images):
        rows = np.flatnonzero(a.image == i)
        assert len(set(a.label[rows].tolist())) == len(rows)
        cover = sum(M.decode(a.mask[r]).astype(int) for r in rows)
        assert cover.shape == (36, 48) and np.all(cover == 1)
    scores = evaluate(data, pred)
    assert 0 <= scores["miou"] <= 1


def test_save_load_and_batch_size_invariance(trained: object, data: Dataset, tmp_path: Path) -> None:
    pred = trained.predict(data, batch_size=3)  # type: ignore[attr-defined]
    folder = trained.save(tmp_path / "seg")  # type: ignore[attr-defined]
    again = load_model(folder)
    other = again.predict(data, batch_size=1)
    assert np.array_equal(pred.annotations.label, other.annotations.label)
    assert np.array_equal(pred.annotations.score, other.annotations.score)
    assert [M.to_json(m) for m in pred.annotations.mask] == [M.to_json(m) for m in other.annotations.mask]
    assert again.history.weights == trained.history.weights  # type: ignore[attr-defined]


@pytest.mark.parametrize("model", ["deeplabv3", "fcn"])
def test_other_heads_train_from_scratch(model: str, data: Dataset) -> None:
    m = build_model(_cfg(model, pretrained="no", epochs=2)).fit(data.select_images([0, 1, 2, 3, 4]))
    assert m.history.weights == "from scratch (efficientnet-lite0; pretrained: no)"
    assert np.isfinite(m.history.epochs[-1].loss)
    pred = m.predict(data.select_images([0]))
    assert pred.n_annotations >= 1 and pred.schema.task == Task.SEMANTIC_SEGMENTATION


def test_onnx_spec_runs(trained: object) -> None:
    module, example, inputs, outputs, axes = trained.onnx_spec()  # type: ignore[attr-defined]
    with torch.no_grad():
        logits = module(example)
    assert logits.shape == (1, 4, 32, 32) and inputs == ["image"] and outputs == ["logits"] and "image" in axes


def test_a_batch_with_no_labelled_pixel_trains(data: Dataset) -> None:
    """An image without masks (or only void) is all ignore pixels: its batch adds nothing to learn, and must not
    stop training as a NaN loss (cross entropy's mean over no pixel)."""
    sub = data.select_images([0, 1, 2])
    a = sub.annotations
    unlabelled = sub.select((a.image != 0) & ~((a.image == 1) & ~a.iscrowd))  # 0: no mask; 1: only its void border
    m = build_model(_cfg(epochs=1, batch_size=1, image_size=64, params={"flip": 0.0})).fit(unlabelled)
    assert np.all(np.isfinite([e.loss for e in m.history.epochs]))


def test_a_batch_of_one_image_trains(data: Dataset) -> None:
    """3 images in batches of 2 end on a batch of 1; at 32 pixels LR-ASPP's stride-32 map is 1x1, where a batch
    norm can't train on a single value per channel."""
    m = build_model(_cfg(pretrained="no", epochs=1, batch_size=2)).fit(data.select_images([0, 1, 2]))
    assert np.isfinite(m.history.epochs[0].loss)
