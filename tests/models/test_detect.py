"""TorchvisionDetector on the tiny generated shapes: loss falls, valid predictions, save/load, batch invariance."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import Task
from maslow.errors import InvalidDatasetError, MaslowError, ModelError
from maslow.models.base import TrainConfig, build_model, load_model
from maslow.models.evaluate import evaluate
from maslow.sample import write_shapes

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("efficientnet_lite_pytorch")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return write_shapes(tmp_path_factory.mktemp("shapes"), 8, seed=1, width=80, height=60)


def _cfg(model: str = "fasterrcnn", **kw: object) -> TrainConfig:
    params = {"max_detections": 20, "score_threshold": 0.0, "proposals": 50, "box_batch_size": 64}
    base: dict[str, object] = {"data": "unused", "model": model, "image_size": 64, "epochs": 3, "batch_size": 4,
                               "lr": 0.01, "threads": 1, "patience": 0, "params": params}
    return TrainConfig.from_dict({**base, **kw})


@pytest.fixture(scope="module")
def trained(shapes: Dataset) -> object:
    return build_model(_cfg()).fit(shapes)


def test_loss_falls_and_predictions_are_a_valid_dataset(trained: object, shapes: Dataset) -> None:
    h = trained.history  # type: ignore[attr-defined]
    assert len(h.epochs) == 3 and h.epochs[-1].loss < h.epochs[0].loss
    assert h.weights == "imagenet efficientnet-lite0 (package)"
    pred = trained.predict(shapes)  # type: ignore[attr-defined]
    a = pred.annotations
    assert pred.images is shapes.images and pred.schema == shapes.schema and pred.root == shapes.root
    assert len(a) > 0
    assert set(a.source.tolist()) == {"model"} and np.all((a.score > 0) & (a.score <= 1))
    w, hgt = shapes.images.width[a.image], shapes.images.height[a.image]
    assert np.all(a.box[:, 0] >= 0) and np.all(a.box[:, 2] <= w) and np.all(a.box[:, 3] <= hgt)  # original pixels
    assert a.label.max() < len(shapes.schema.classes) and a.mask is None
    assert 0 <= evaluate(shapes, pred, task=Task.DETECTION)["map_50_95"] <= 1


def test_predict_is_batch_size_invariant_and_survives_save_load(trained: object, shapes: Dataset,
                                                                  tmp_path: Path) -> None:
    one = trained.predict(shapes, batch_size=1)  # type: ignore[attr-defined]
    many = trained.predict(shapes, batch_size=5)  # type: ignore[attr-defined]
    assert np.array_equal(one.annotations.box, many.annotations.box)
    assert np.array_equal(one.annotations.score, many.annotations.score)
    folder = trained.save(tmp_path / "det")  # type: ignore[attr-defined]
    assert (folder / "weights.pt").is_file() and (folder / "model.json").is_file()
    again = load_model(folder)
    assert again.history.weights == trained.history.weights  # type: ignore[attr-defined]
    back = again.predict([str(shapes.root / p) for p in shapes.images.path], batch_size=3)  # type: ignore[operator]
    assert np.array_equal(back.annotations.box, one.annotations.box)
    assert np.array_equal(back.annotations.label, one.annotations.label)


def test_training_is_seeded(shapes: Dataset) -> None:
    sub = shapes.select_images([0, 1, 2, 3])
    a = build_model(_cfg(epochs=1, batch_size=2)).fit(sub)
    b = build_model(_cfg(epochs=1, batch_size=2)).fit(sub)
    assert a.history.epochs[0].loss == b.history.epochs[0].loss


@pytest.mark.parametrize("model", ["retinanet", "fcos", "ssdlite"])
def test_one_stage_detectors_train_from_scratch(model: str, shapes: Dataset, tmp_path: Path) -> None:
    sub = shapes.select_images([0, 1, 2, 3])
    m = build_model(_cfg(model, pretrained="no", epochs=1, batch_size=2)).fit(sub)
    assert m.history.weights == "from scratch (efficientnet-lite0; pretrained: no)"
    assert np.isfinite(m.history.epochs[0].loss)
    pred = m.predict(sub)
    assert np.all(pred.annotations.label >= 0) and np.all(pred.annotations.label < 3)
    again = load_model(m.save(tmp_path / model))
    assert np.array_equal(again.predict(sub).annotations.score, pred.annotations.score)


def test_maskrcnn_predicts_masks_in_original_pixels(shapes: Dataset, tmp_path: Path) -> None:
    sub = shapes.select_images([0, 1, 2, 3])
    m = build_model(_cfg("maskrcnn", epochs=1, batch_size=2, params={"max_detections": 5, "proposals": 20})).fit(sub)
    pred = m.predict(sub)
    assert pred.annotations.mask is not None and len(pred.annotations.mask) == pred.n_annotations
    assert all(list(r["size"]) == [60, 80] for r in pred.annotations.mask)
    assert M.area(list(pred.annotations.mask)).shape == (pred.n_annotations,)
    assert "map_50_95" in evaluate(sub, pred, task=Task.INSTANCE_SEGMENTATION)


def test_errors_name_the_problem(shapes: Dataset, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="predict needs a trained"):
        build_model(_cfg()).predict(shapes)
    with pytest.raises(InvalidDatasetError, match="must hold boxes"):
        build_model(_cfg()).fit(shapes.select([]))
    with pytest.raises(MaslowError, match="config field 'backbone' must be 'auto' or 'efficientnet-lite0' for "
                                          "ssdlite, got 'resnet18'"):  # when built: before any data is read
        build_model(_cfg("ssdlite", backbone="resnet18", pretrained="no"))
    from maslow.embed.backbones import cached_torchvision_weights

    if "resnet18" not in cached_torchvision_weights():
        with pytest.raises(ModelError, match="never downloads"):
            build_model(_cfg(backbone="resnet18", pretrained="yes")).fit(shapes)


def test_torchvision_backbone_from_scratch(shapes: Dataset, tmp_path: Path) -> None:
    sub = shapes.select_images([0, 1])
    m = build_model(_cfg(backbone="resnet18", pretrained="no", epochs=1, batch_size=2)).fit(sub)
    assert m.history.weights == "from scratch (resnet18; pretrained: no)"
    again = load_model(m.save(tmp_path / "r18"))
    assert np.array_equal(again.predict(sub).annotations.box, m.predict(sub).annotations.box)


def test_onnx_spec_exports_and_matches_onnxruntime(trained: object, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    module, example, inputs, outputs, axes = trained.onnx_spec()  # type: ignore[attr-defined]
    path = tmp_path / "det.onnx"
    with warnings.catch_warnings():  # the legacy exporter's deprecation notice and tracer warnings
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    with torch.no_grad():
        want = [t.numpy() for t in module.eval()(example)]
    got = ort.InferenceSession(str(path)).run(None, {"image": example.numpy()})
    assert got[0].shape == want[0].shape
    np.testing.assert_allclose(got[0], want[0], atol=1e-3)
    np.testing.assert_array_equal(got[2], want[2])


def test_ssdlite_trains_on_a_batch_of_one_image(shapes: Dataset) -> None:
    """3 images in batches of 2 end on a batch of 1, where SSDlite's extra layers are 1x1 maps: their batch norms
    can't train on a single value per channel."""
    m = build_model(_cfg("ssdlite", pretrained="no", epochs=1, batch_size=2)).fit(shapes.select_images([0, 1, 2]))
    assert np.isfinite(m.history.epochs[0].loss)


def test_predictions_obey_thresholds_and_nms_as_torchvision_ops(trained: object, shapes: Dataset) -> None:
    """Per image: at most ``max_detections`` rows, scores at or above ``score_threshold``, and torchvision's own
    ``batched_nms`` at ``nms_threshold`` keeps every returned box (IoU does not change when each axis is scaled)."""
    from torchvision.ops import batched_nms

    cfg = trained.config  # type: ignore[attr-defined]
    pred = trained.predict(shapes)  # type: ignore[attr-defined]
    a = pred.annotations
    for i in range(shapes.n_images):
        rows = np.flatnonzero(a.image == i)
        assert len(rows) <= cfg.params["max_detections"]
        assert np.all(a.score[rows] >= cfg.params["score_threshold"])
        assert np.all(np.diff(a.score[rows]) <= 0)  # best first
        keep = batched_nms(torch.from_numpy(a.box[rows]), torch.from_numpy(a.score[rows]),
                           torch.from_numpy(a.label[rows]), 0.5)
        assert sorted(keep.tolist()) == list(range(len(rows)))


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_weights_file_is_named(damage: str, trained: object, tmp_path: Path) -> None:
    folder = trained.save(tmp_path / "det")  # type: ignore[attr-defined]
    weights = folder / "weights.pt"
    weights.write_bytes(b"not torch weights" * 4 if damage == "garbage" else weights.read_bytes()[:100])
    with pytest.raises(ModelError, match=r"weights\.pt"):
        load_model(folder)
