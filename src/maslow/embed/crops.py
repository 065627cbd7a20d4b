"""Embeddings of annotation crops: what each box shows, for outlier and label-error finding.

Each annotation with a box is cut from its image (with a margin), resized to a square and described by its
shape: a histogram of oriented gradients on a 4x4 grid (the light embedder's HOG; numpy only). Colour is left
out on purpose: objects of one class come in many colours, and on the shapes sample colour halves how often a
crop's nearest neighbour has its class (1-NN class agreement 0.71 for colour alone, 0.89 for the whole light
vector, 0.99 for HOG). Images are decoded once each, as displayed and in colour (``io.images.load_rgb``: EXIF
orientation applied, palettes through their colours, 16-bit images scaled).

Crop convention: the crop of box (x1, y1, x2, y2) with margin m is the pixel grid
``floor(x1 - m w) .. ceil(x2 + m w)`` by ``floor(y1 - m h) .. ceil(y2 + m h)`` (``w, h`` the box's size: every pixel
the widened box touches), clipped to the image.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from maslow.core.dataset import Dataset
from maslow.embed.light import hog
from maslow.errors import FormatError, MaslowError
from maslow.io.images import image_path, load_rgb

#: Feature length of ``embed_crops``: 4 x 4 cells x 9 orientations.
CROP_DIM = 144


def embed_crops(
    ds: Dataset, *, size: int = 64, margin: float = 0.1, progress: Callable[[int, int], None] | None = None
) -> np.ndarray:
    """(n, 144) float32 shape features (L2-normalised HOG) of every annotation's box crop, aligned with
    ``ds.annotations``.

    Args:
        size: crops are resized to ``size`` x ``size`` pixels.
        margin: context added around each box, as a fraction of its width and height.
        progress: called as ``progress(done_images, total_images)``.

    Returns:
        One row per annotation; NaN rows for annotations without a box, with an empty box (zero width or
        height), whose box lies wholly outside the image, or whose image can't be read (those are the technical
        checks' findings).

    Raises:
        MaslowError: ``size`` below 1.
    """
    if size < 1:
        raise MaslowError(f"embed_crops: size must be >= 1, got {size}")
    a = ds.annotations
    assert a.box is not None
    out = np.full((len(a), CROP_DIM), np.nan, np.float32)
    slices = ds.image_slices()
    todo = np.flatnonzero(np.diff(slices) > 0)
    for n, i in enumerate(todo.tolist()):
        rows = np.arange(slices[i], slices[i + 1])
        box = a.box[rows]
        rows = rows[(box[:, 2] > box[:, 0]) & (box[:, 3] > box[:, 1])]  # NaN rows (no box) compare False
        if len(rows):
            try:
                rgb: np.ndarray | None = load_rgb(image_path(ds, i))
            except FormatError:
                rgb = None
            if rgb is not None:
                h, w = rgb.shape[:2]
                for r in rows.tolist():
                    x1, y1, x2, y2 = a.box[r]
                    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
                    c = (int(max(0, np.floor(x1 - mx))), int(max(0, np.floor(y1 - my))),
                         int(min(w, np.ceil(x2 + mx))), int(min(h, np.ceil(y2 + my))))
                    if c[2] - c[0] < 1 or c[3] - c[1] < 1:
                        continue
                    crop = Image.fromarray(np.ascontiguousarray(rgb[c[1]:c[3], c[0]:c[2]]))
                    grey = np.asarray(crop.convert("L").resize((size, size), Image.Resampling.BILINEAR))
                    v = np.sqrt(hog(grey.astype(np.float32)))
                    out[r] = v / (np.linalg.norm(v) + 1e-12)
        if progress is not None:
            progress(n + 1, len(todo))
    return out
