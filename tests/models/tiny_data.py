"""Tiny generated image datasets for the model tests: coloured squares on noise, 32 x 32 PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

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
