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


class _Fake:
    """A stand-in for a loaded model: ``onnx_spec`` gives a tiny module with a dynamic batch axis."""

    def __init__(self, module: object, outputs: tuple[str, ...]) -> None:
        self.module, self.outputs = module, outputs

    def onnx_spec(self) -> tuple[object, object, list[str], list[str], dict[str, dict[int, str]]]:
        import torch

        example = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        axes = {"x": {0: "batch"}, **{o: {0: "batch"} for o in self.outputs}}
        return self.module, example, ["x"], list(self.outputs), axes


def _fake_export(monkeypatch: pytest.MonkeyPatch, forward: object, outputs: tuple[str, ...]) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from maslow.models import base

    class Module(torch.nn.Module):  # type: ignore[misc,name-defined]
        def forward(self, x: object) -> object:
            return forward(x)  # type: ignore[operator]

    monkeypatch.setattr(base, "read_model_json", lambda folder: {"adapter": "fake"})
    monkeypatch.setattr(base, "load_model", lambda folder: _Fake(Module().eval(), outputs))


def test_each_output_is_held_to_its_own_tolerance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The graph's ``probs`` are 0.05 off torch's, far over their own bound (1e-4 + 1e-3 * 1), though under the
    bound the larger ``sums`` output would give (1e-4 + 1e-3 * about 500): the check must fail, and write nothing."""
    torch = pytest.importorskip("torch")

    from maslow.models.onnx import export_onnx

    def forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probs = x.mean(dim=(2, 3)).softmax(1)
        if torch.onnx.is_in_onnx_export():  # only the exported graph is off
            probs = probs + 0.05
        return x.sum(dim=(2, 3)) * 16, probs

    _fake_export(monkeypatch, forward, ("sums", "probs"))
    dst = tmp_path / "m.onnx"
    dst.write_bytes(b"the previous export")
    with pytest.raises(ModelError, match=r"probs.*0\.05"):
        export_onnx(tmp_path / "model", dst)
    assert dst.read_bytes() == b"the previous export"  # a graph that fails its check is not published
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # nor left beside it


def test_an_output_within_its_tolerance_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from maslow.models.onnx import export_onnx

    _fake_export(monkeypatch, lambda x: (x.sum(dim=(2, 3)), x.mean(dim=(2, 3)).softmax(1)), ("sums", "probs"))
    rep = export_onnx(tmp_path / "model", tmp_path / "m.onnx")
    assert rep.batch_sizes == (1, 3) and rep.max_abs_diff <= rep.tolerance
    assert rep.size_bytes == (tmp_path / "m.onnx").stat().st_size > 0


def test_a_graph_that_fails_on_another_batch_size_is_a_model_error(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Tracing bakes ``int(x.shape[0])`` in as 1: onnxruntime refuses the batch of 3 with its own exception, which
    must come out as a ModelError naming the file, with nothing written."""
    from maslow.models.onnx import export_onnx

    _fake_export(monkeypatch, lambda x: x.reshape(int(x.shape[0]), 3 * 8 * 8), ("flat",))
    with pytest.raises(ModelError, match=r"m\.onnx"):
        export_onnx(tmp_path / "model", tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []
