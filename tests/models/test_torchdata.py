"""The torch adapters' data edge: pixels of every image mode, the images argument, and boxes resized in and out,
each compared with an independent reference (Pillow's own conversion, torchvision's ``resize_boxes``)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError, InvalidDatasetError

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from maslow.models import _torchdata as TD  # noqa: E402  (after the importorskip of torch)


def _colours(h: int = 6, w: int = 10) -> np.ndarray:
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, : w // 2] = (200, 30, 30)
    rgb[:, w // 2 :] = (20, 40, 220)
    return rgb


def _one(path: Path) -> Dataset:
    return TD.as_dataset([str(path)])


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "1", "CMYK"])
def test_load_rgb_gives_the_colours_pillow_shows(mode: str, tmp_path: Path) -> None:
    path = tmp_path / ("im.jpg" if mode == "CMYK" else "im.png")
    im = Image.fromarray(_colours())
    (im.quantize(4) if mode == "P" else im.convert(mode)).save(path)
    with Image.open(path) as ref:
        assert ref.mode == mode
        want = np.asarray(ref.convert("RGB"))
    got = TD.load_rgb(_one(path), 0)
    assert got.dtype == np.uint8 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_load_rgb_scales_16_bit_grey(tmp_path: Path) -> None:
    grey = (np.arange(60).reshape(6, 10) * 1000).astype(np.uint16)  # up to 59000 of 65535
    Image.fromarray(grey).save(tmp_path / "g16.png")
    want = np.rint(grey / 257.0).astype(np.uint8)  # 0-65535 onto 0-255, as the light embedder reads it
    got = TD.load_rgb(_one(tmp_path / "g16.png"), 0)
    np.testing.assert_array_equal(got, np.repeat(want[:, :, None], 3, axis=2))


def test_load_rgb_refuses_an_image_without_pixels(tmp_path: Path) -> None:
    idx = tmp_path / "empty-idx3-ubyte"
    idx.write_bytes(bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 1, 0, 5))  # one image of 0 x 5 pixels
    with pytest.raises(FormatError, match="empty-idx3-ubyte") as e:
        TD.load_rgb(_one(Path(f"{idx}#0")), 0)
    assert "0x5" in str(e.value) or "5x0" in str(e.value)


@pytest.mark.parametrize("kind", [str, Path])
def test_a_single_path_is_not_a_list_of_images(kind: type, tmp_path: Path) -> None:
    Image.fromarray(_colours()).save(tmp_path / "a.png")
    with pytest.raises(InvalidDatasetError, match=r"a\.png"):
        TD.as_dataset(kind(tmp_path / "a.png"))


def _boxes_dataset(tmp_path: Path, w: int, h: int, boxes: list[list[float]]) -> Dataset:
    (tmp_path / "images").mkdir(exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(tmp_path / "images" / "im.png")
    images = Images(path=obj_array(["images/im.png"]), width=np.array([w]), height=np.array([h]))
    ann = Annotations(image=np.zeros(len(boxes), np.int64), label=np.zeros(len(boxes), np.int64),
                      box=np.asarray(boxes, np.float64))
    return Dataset(LabelSchema.from_names(["thing"], task="detection"), images, ann, root=tmp_path)


# (w, h): the rounded side's scale differs from the longer side's (37 * 0.64 = 23.68 -> 24)
SIZES = [(100, 37), (37, 100), (90, 7)]


@pytest.mark.parametrize(("w", "h"), SIZES)
def test_training_boxes_are_resized_like_torchvision(w: int, h: int, tmp_path: Path) -> None:
    from torchvision.models.detection.transform import resize_boxes

    from maslow.core.schema import Task

    boxes = [[0.0, 0.0, w, h], [w * 0.3, h * 0.4, w * 0.9, h * 0.8]]
    s = TD.make_sample(_boxes_dataset(tmp_path, w, h, boxes), 0, 64, task=Task.DETECTION)
    rh, rw = s.pixels.shape[:2]
    want = resize_boxes(torch.tensor(boxes, dtype=torch.float64), (h, w), (rh, rw)).numpy()
    np.testing.assert_allclose(s.boxes, want, atol=1e-4)


@pytest.mark.parametrize(("w", "h"), SIZES)
def test_predicted_boxes_come_back_like_torchvision(w: int, h: int, tmp_path: Path) -> None:
    """A stand-in network answers boxes at fixed fractions of the image it is given; ``predict`` must map them to
    the original pixels as torchvision's own postprocess does (each axis by its own ratio)."""
    from torchvision.models.detection.transform import resize_boxes

    from maslow.models.base import TrainConfig
    from maslow.models.detect import TorchvisionDetector

    fractions = torch.tensor([[0.25, 0.5, 0.75, 1.0], [0.0, 0.1, 0.5, 0.6]], dtype=torch.float64)
    seen: list[tuple[int, int]] = []

    class Fake(torch.nn.Module):  # type: ignore[misc,name-defined]
        def forward(self, images: list[object]) -> list[dict[str, object]]:
            rh, rw = images[0].shape[-2:]  # type: ignore[attr-defined]
            seen.append((int(rh), int(rw)))
            boxes = (fractions * torch.tensor([rw, rh, rw, rh], dtype=torch.float64)).float()
            return [{"boxes": boxes, "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([1, 1])}]

    model = TorchvisionDetector(TrainConfig(data="x", model="fasterrcnn", image_size=64, device="cpu"))
    ds = _boxes_dataset(tmp_path, w, h, [])
    model.schema, model._net = ds.schema, Fake()
    pred = model.predict(ds)
    rh, rw = seen[0]
    given = (fractions * torch.tensor([rw, rh, rw, rh], dtype=torch.float64)).float().double()
    want = resize_boxes(given, (rh, rw), (h, w)).numpy()
    np.testing.assert_allclose(pred.annotations.box, np.clip(want, 0, [w, h, w, h]), atol=1e-4)
    assert pred.annotations.label.tolist() == [0, 0]  # torchvision's 1 is the schema's first class


@pytest.mark.parametrize("size", [16, 11])
def test_semantic_label_maps_keep_every_class_index(size: int, tmp_path: Path) -> None:
    """A schema of 300 classes: indexes 255 and 260 are classes like any other (not the ignore value, not wrapped
    to 4); resizing is nearest, so the map equals Pillow's nearest resize of the true label map."""
    from maslow.core import masks as M
    from maslow.core.schema import Task

    truth = np.full((16, 16), 7, np.int64)
    truth[2:9, 3:12], truth[10:15, 1:6] = 255, 260
    (tmp_path / "images").mkdir()
    Image.fromarray(np.full((16, 16, 3), 100, np.uint8)).save(tmp_path / "images" / "a.png")
    labels = np.unique(truth)
    ann = Annotations(image=np.zeros(len(labels), np.int64), label=labels, mask=obj_array([M.encode(truth == c)
                                                                                            for c in labels]))
    images = Images(path=obj_array(["images/a.png"]), width=np.array([16]), height=np.array([16]))
    schema = LabelSchema.from_names([f"c{k}" for k in range(300)], task="semantic_segmentation")
    s = TD.make_sample(Dataset(schema, images, ann, root=tmp_path), 0, size, task=Task.SEMANTIC_SEGMENTATION)
    want = np.asarray(Image.fromarray(truth.astype(np.int32)).resize((size, size), Image.Resampling.NEAREST))
    assert s.label_map is not None and s.label_map.dtype == np.int64
    np.testing.assert_array_equal(s.label_map, want)
    assert not np.any(s.label_map == TD.IGNORE)  # every pixel is labelled: none is left out of the loss
