"""Tiny generated classification data for the training tests: coloured shapes in an image-folder layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle")
COLOURS = ((220, 40, 40), (40, 200, 40), (40, 60, 220))


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
                colour = tuple(int(np.clip(c + rng.integers(-30, 30), 0, 255)) for c in COLOURS[k])
                if name == "circle":
                    d.ellipse(box, fill=colour)
                elif name == "square":
                    d.rectangle(box, fill=colour)
                else:
                    d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
                im.save(folder / f"{i}.png")
    return dst
