"""ONNX export: the exported graph reproduces torch (checked with onnxruntime), non-torch adapters are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maslow import io
from maslow.errors import ModelError
from maslow.models.base import TrainConfig
from tests.models.tiny_data import write_tiny_classification


def test_classifier_exports_and_matches_torch(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("torchvision")
    from maslow.models.onnx import export_onnx
    from maslow.models.train import train

    data = write_tiny_classification(tmp_path / "data", n_train=3, n_val=2)
    cfg = TrainConfig(data=str(data), format="imagefolder", model="torchvision-classifier",
                      backbone="mobilenet_v3_small", pretrained="no", epochs=1, image_size=32, threads=1,
                      out=str(tmp_path / "model"), tracking="off")
    result = train(cfg)
    rep = export_onnx(result.path, tmp_path / "m.onnx")
    assert rep.path.is_file() and rep.size_bytes == rep.path.stat().st_size
    assert rep.input_names == ("images",) and rep.output_names == ("probs",) and rep.input_shape == (1, 3, 32, 32)
    assert rep.batch_sizes == (1, 3) and rep.max_abs_diff <= rep.tolerance < 1e-2
    # the graph takes raw pixels: it reproduces the model's own predictions on real images
    from maslow.embed.light import load_small_rgb

    ds = io.read(data, "imagefolder")
    x = np.stack([load_small_rgb(data / p, 32).transpose(2, 0, 1) for p in ds.images.path]).astype(np.float32)
    probs = ort.InferenceSession(str(rep.path), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    expected = result.model.predict(ds).annotations.extra["probs"]
    np.testing.assert_allclose(probs, expected, atol=1e-4)
    assert rep.to_dict()["batch_sizes"] == [1, 3]


def test_embedding_classifier_is_not_exportable(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from maslow.models.onnx import export_onnx
    from maslow.models.train import train

    data = write_tiny_classification(tmp_path / "data", n_train=3, n_val=0)
    cfg = TrainConfig(data=str(data), format="imagefolder", model="embed-logreg", backbone="light",
                      out=str(tmp_path / "model"), tracking="off")
    with pytest.raises(ModelError, match="not exportable to ONNX"):
        export_onnx(train(cfg).path, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_not_a_model_folder(tmp_path: Path) -> None:
    from maslow.models.onnx import export_onnx

    with pytest.raises(ModelError, match="not a maslow model folder"):
        export_onnx(tmp_path, tmp_path / "m.onnx")


@pytest.mark.slow
@pytest.mark.parametrize("adapter", ["fasterrcnn", "ssdlite"])
def test_detector_exports_and_matches_torch(adapter: str, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torchvision")
    from maslow.models.base import build_model
    from maslow.models.onnx import export_onnx
    from maslow.sample import write_shapes

    ds = write_shapes(tmp_path / "shapes", 4, seed=0)
    io.write(ds, tmp_path / "shapes" / "annotations.json", "coco")
    cfg = TrainConfig(data=str(tmp_path / "shapes" / "annotations.json"), format="coco", model=adapter, epochs=1,
                      image_size=64, threads=1, pretrained="no", batch_size=2, params={"score_threshold": 0.0})
    folder = build_model(cfg).fit(ds).save(tmp_path / "model")
    rep = export_onnx(folder, tmp_path / "m.onnx")  # detections of equal score may swap: compared as sets
    assert rep.output_names == ("boxes", "scores", "labels") and rep.max_abs_diff <= rep.tolerance
    assert rep.real_rows is not None and rep.real_rows > 0  # a training image with detections was compared too
