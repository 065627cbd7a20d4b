"""Tiny generated image datasets for the model tests: coloured squares on noise (a Dataset), coloured shapes in an
image-folder layout (``dst/<split>/<class>/<i>.png``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array

COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 80, 220)}


def colour_squares(dst: Path, n: int = 36, *, seed: int = 0, multilabel: bool = False, size: int = 32,
                   frames_per_sequence: int = 1) -> Dataset:
    """``n`` images under ``dst/images``; classification: one square of one colour per image (class = colour);
    multi-label: each colour present or not (tags = the colours drawn). ``sequence`` groups consecutive frames."""
    rng = np.random.default_rng(seed)
    names = list(COLOURS)
    (dst / "images").mkdir(parents=True, exist_ok=True)
    img: list[int] = []
    lab: list[int] = []
    for i in range(n):
        px = rng.integers(90, 160, size=(size, size, 3)).astype(np.uint8)
        present = ([int(c) for c in np.flatnonzero(rng.random(3) < 0.5)] if multilabel else [i % 3])
        for c in present:
            s = int(rng.integers(8, 14))
            x, y = (int(v) for v in rng.integers(0, size - s, 2))
            px[y:y + s, x:x + s] = COLOURS[names[c]]
            img.append(i)
            lab.append(c)
        Image.fromarray(px).save(dst / "images" / f"sq_{i:03d}.png")
    seq = np.arange(n) // max(frames_per_sequence, 1)
    images = Images(path=obj_array([f"images/sq_{i:03d}.png" for i in range(n)]), width=np.full(n, size),
                    height=np.full(n, size), extra={"sequence": obj_array([f"s{s}" for s in seq])})
    schema = LabelSchema.from_names(names, task="multilabel" if multilabel else "classification")
    return Dataset(schema, images, Annotations(image=img, label=lab), root=dst)


CLASSES = ("circle", "square", "triangle")
SHAPE_COLOURS = ((220, 40, 40), (40, 200, 40), (40, 60, 220))


def write_tiny_classification(dst: Path, *, n_train: int = 8, n_val: int = 4, n_test: int = 0, size: int = 32,
                              seed: int = 0) -> Path:
    """``dst/<split>/<class>/<i>.png``: one shape per image, its class also tied to its colour (easy to learn)."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        for k, name in enumerate(CLASSES):
            folder = dst / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                bg = tuple(int(v) for v in rng.integers(0, 60, 3))
                im = Image.new("RGB", (size, size), bg)
                d = ImageDraw.Draw(im)
                r = int(rng.integers(size // 5, size // 3))
                cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
                box = (cx - r, cy - r, cx + r, cy + r)
                colour = tuple(int(np.clip(c + rng.integers(-30, 30), 0, 255)) for c in SHAPE_COLOURS[k])
                if name == "circle":
                    d.ellipse(box, fill=colour)
                elif name == "square":
                    d.rectangle(box, fill=colour)
                else:
                    d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
                im.save(folder / f"{i}.png")
    return dst
