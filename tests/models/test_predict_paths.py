"""Predicting from a list of image paths: the predictions' images table carries each image's displayed size (EXIF
orientation applied, as ``maslow.io.images.image_info`` reads it), so a COCO export writes real sizes (was 0)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from maslow import io
from maslow.core.dataset import Dataset
from maslow.io.images import image_info
from maslow.models.base import TrainConfig, build_model
from maslow.sample import write_shapes
from tests.models.tiny_data import colour_squares

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("sklearn")


def _images(dst: Path) -> list[Path]:
    """A 40x24 PNG and a JPEG stored 48x32 whose EXIF orientation (6: turn 90 degrees) shows it 32x48."""
    dst.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    png, jpg = dst / "plain.png", dst / "turned.jpg"
    Image.fromarray(rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)).save(png)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)).save(jpg, exif=exif)
    return [png, jpg]


def _semantic(dst: Path) -> Dataset:
    from tests.models.test_semantic import write_semantic

    return write_semantic(dst, 2)


ADAPTERS: dict[str, tuple[dict[str, Any], Any]] = {
    "embed-logreg": ({"backbone": "light"}, lambda d: colour_squares(d, 6)),
    "torchvision-classifier": ({"backbone": "resnet18", "pretrained": "no", "image_size": 32},
                               lambda d: colour_squares(d, 6)),
    "fasterrcnn": ({"image_size": 64, "params": {"proposals": 20, "box_batch_size": 16}},
                   lambda d: write_shapes(d, 2, seed=1, width=80, height=60)),
    "lraspp": ({"image_size": 32}, _semantic),
}


@pytest.mark.parametrize("model", list(ADAPTERS))
def test_predictions_from_paths_carry_displayed_sizes(model: str, tmp_path: Path) -> None:
    kw, make = ADAPTERS[model]
    params = {"cache_dir": str(tmp_path / "cache")} if model == "embed-logreg" else {}
    cfg = TrainConfig.from_dict({"data": "unused", "model": model, "epochs": 1, "batch_size": 2, "threads": 1,
                                 **kw, "params": {**kw.get("params", {}), **params}})
    fitted = build_model(cfg).fit(make(tmp_path / "train"))
    paths = _images(tmp_path / "new")
    want = [(image_info(p).width, image_info(p).height) for p in paths]
    assert want == [(40, 24), (32, 48)]  # the reference: the header, turned by EXIF
    pred = fitted.predict([str(p) for p in paths])
    assert list(zip(pred.images.width.tolist(), pred.images.height.tolist(), strict=True)) == want
    io.write(pred, tmp_path / "pred.json", "coco")
    doc = json.loads((tmp_path / "pred.json").read_text())
    assert [(r["width"], r["height"]) for r in doc["images"]] == want
